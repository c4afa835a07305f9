/**
 * The gateway: this rig's public `/v1` surface. It serves only the club's public endpoints, only
 * for models this rig advertises, only through the adapter of the service that serves the model.
 * Nothing in a request can name a URL, a header or a service to reach.
 */
import { pipeline } from "node:stream";
import { ABORTED_STATUS, requestLines, type Logger } from "../log.ts";
import { UpstreamError, describeError } from "../errors.ts";
import type { Catalog } from "../discovery/catalog.ts";
import {
  ENDPOINTS,
  HEADER_MODEL,
  HEADER_REQUEST_ID,
  findEndpoint,
  stripClubFields,
  type Endpoint,
  type ErrorType,
} from "../protocol/index.ts";
import {
  HttpError,
  answerError,
  attachMeter,
  dropBody,
  parseJsonObject,
  readBody,
  readCapped,
  sendError,
  sendJson,
  tooLarge,
  unknownEndpoint,
  type HttpRequest as GatewayRequest,
  type HttpResponse as GatewayResponse,
} from "../http/index.ts";
import { BodyBudget } from "./body-budget.ts";
import { Capacity, type Release } from "./capacity.ts";
import { limitBody, unsafeRequestUrl } from "./safety.ts";
import type { UrlGuardOptions } from "./url-guard.ts";
import { ProgressRegistry } from "./progress.ts";
import { MemberLimits, type MemberLimit } from "./member-limits.ts";
import { refusal, requesterOf, type SharingSource } from "./sharing.ts";
import { chatView, execute } from "../../adapters/kit/translate/index.ts";
import { notServed as notServedBy } from "../../adapters/kit/reply.ts";
import { failureCode } from "../../adapters/kit/openai-style.ts";
import { EngineUnavailable } from "../engines/errors.ts";

export interface GatewayOptions {
  /** The current catalog; re-read on every request so re-scans take effect at once. */
  catalog: () => Catalog;
  /** Provider name, the `owned_by` of this rig's model cards. */
  providerName: string;
  log: Logger;
  /** Concurrency limits and queues; one per daemon, so limits hold across tunnels. */
  load?: Capacity;
  /** Largest multipart or raw upload accepted (default 1 GiB). */
  maxUploadBytes?: number;
  /** An engine could not be reached or broke off: the daemon re-scans to mark it down. */
  onEngineFailure?: (service: string) => void;
  /** Requests in flight and their engines' progress (the daemon's `/status`). */
  progress?: ProgressRegistry;
  /** Largest JSON body accepted (default 64 MiB). */
  maxJsonBytes?: number;
  /**
   * Most bytes of request bodies held in memory at once, over all requests (default 256 MiB);
   * past it a request gets 503 `overloaded` and its body is not read.
   */
  maxBufferedBytes?: number;
  /** How URLs an engine would fetch are checked; tests inject a resolver here. */
  urlGuard?: UrlGuardOptions;
  /** Called once per served request, where its log line is written (metrics, recent errors). */
  onRequestDone?: (info: RequestDoneInfo) => void;
  /** The owner and the sharing settings; without it every request is the owner's. */
  sharing?: SharingSource;
  /** The owner's limits on other members (`memberLimits` setting); none without it. */
  memberLimits?: () => Readonly<Record<string, MemberLimit>>;
  /**
   * Managed engines: leases the engine behind a service before a request is forwarded (starting
   * it, within the wait limit); undefined for a service it does not manage. Rejects with
   * `EngineUnavailable` (answered 503 with Retry-After).
   */
  engines?: {
    acquire(service: string, signal: AbortSignal): Promise<() => void> | undefined;
    /**
     * The engine refused the connection: resolves with a new lease once it has been started
     * again if its process had ended (a crash seen late), else undefined.
     */
    afterRefusal?(service: string, signal: AbortSignal): Promise<(() => void) | undefined>;
  };
  /** Why a model takes no work now (its rig or its GPU is paused), or undefined: 429 if so. */
  paused?: (modelId: string) => string | undefined;
}

/** What the gateway knows about a request once it is over. */
export interface RequestDoneInfo {
  requestId: string;
  /** The member the request was for; `undefined` for the rig's owner. */
  member?: string;
  model: string;
  endpoint: string;
  service: string;
  /** The HTTP status sent, or {@link ABORTED_STATUS} when the response did not end. */
  status: number;
  ms: number;
  bytes: number;
  /** Tokens the answer generated (its `usage`, or the text events streamed); null: unknown. */
  tokens: number | null;
  /** The caller left (or the stream broke) before the response was complete. */
  aborted: boolean;
}

export type Gateway = ((req: GatewayRequest, res: GatewayResponse) => void) & {
  load: Capacity;
  progress: ProgressRegistry;
  /** Request bodies held in memory now, against `maxBufferedBytes`. */
  buffered: BodyBudget;
};

/** Answers up to this size with a declared length are read whole before they are sent. */
const WHOLE_REPLY_BYTES = 256 * 1024;
const KNOWN_PATHS = new Set(ENDPOINTS.map((e) => e.path));
const PASS_HEADERS = ["content-type", "accept"] as const;
/** Retry-After of a paused model: a pause lasts minutes, not the seconds of a full queue. */
const PAUSED_RETRY_SECONDS = 60;

export function createGateway(options: GatewayOptions): Gateway {
  const { log } = options;
  const logRequest = requestLines(log);
  const load = options.load ?? new Capacity();
  const maxUpload = options.maxUploadBytes ?? 1024 * 1024 * 1024;
  const progress = options.progress ?? new ProgressRegistry();
  const maxJson = options.maxJsonBytes ?? 64 * 1024 * 1024;
  const buffered = new BodyBudget(options.maxBufferedBytes);
  const started = Math.floor(Date.now() / 1000);
  const memberLimits = new MemberLimits(options.memberLimits ?? (() => ({})));

  async function handle(req: GatewayRequest, res: GatewayResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://gateway");
    const method = req.method ?? "GET";
    if (method === "GET" && url.pathname === "/v1/models") {
      sendJson(res, 200, {
        object: "list",
        data: options.catalog().cards(options.providerName, started),
      });
      return;
    }
    const endpoint = findEndpoint(method, url.pathname);
    // Refusals leave the body unread: HTTP/2 resets the rest of the stream once the answer is
    // out, and node:http discards it.
    if (!endpoint) throw unknownEndpoint(method, url.pathname, KNOWN_PATHS);
    await serve(req, res, endpoint, url);
  }

  async function serve(
    req: GatewayRequest,
    res: GatewayResponse,
    endpoint: Endpoint,
    url: URL,
  ): Promise<void> {
    const t0 = performance.now();
    const requestId = String(req.headers[HEADER_REQUEST_ID] ?? "local");
    const named = req.headers[HEADER_MODEL];
    let modelId = typeof named === "string" ? named : undefined;
    const servedFor = (id: string) =>
      options
        .catalog()
        .findAll(id)
        .filter((c) => c.model.type === endpoint.serviceType);
    const notServed = (id: string): void =>
      sendError(
        res,
        404,
        "not_found_error",
        `model ${JSON.stringify(id)} is not served here for ${endpoint.path}`,
      );
    // The relay names the model in a header: a request for a model not served here, or not
    // shared with the member it is for, is refused before a byte of its body is read.
    if (modelId !== undefined && servedFor(modelId).length === 0) return notServed(modelId);
    const who = requesterOf(req.headers, options.sharing);
    const denied = (id: string): string | undefined =>
      refusal(options.catalog(), id, who, options.sharing, options.providerName);
    const headerDenial = modelId === undefined ? undefined : denied(modelId);
    if (headerDenial) return sendError(res, 403, "permission_error", headerDenial);
    // A paused rig drains: what runs finishes, new work is refused; the relay tries elsewhere.
    const pausedNow = (id: string): boolean => {
      const reason = options.paused?.(id);
      if (reason === undefined) return false;
      sendError(
        res,
        429,
        "rate_limit_error",
        `${options.providerName} is not serving ${id} now (${reason}): retry later or elsewhere`,
        { "retry-after": String(PAUSED_RETRY_SECONDS) },
      );
      return true;
    };
    if (modelId !== undefined && pausedNow(modelId)) return;
    const admitted = memberLimits.admit(who);
    if ("refusal" in admitted)
      return sendError(res, 429, "rate_limit_error", admitted.refusal, {
        "retry-after": String(admitted.retryAfter),
      });
    res.once("close", admitted.release);
    let json: Record<string, unknown> | undefined;
    if (endpoint.body === "json") {
      // Made when thrown: an Error's stack costs more than the rest of a small request's checks.
      const overloaded = (): HttpError =>
        new HttpError(
          503,
          "overloaded",
          `${options.providerName} is holding as many request bodies as it may (${buffered.limit} bytes): retry shortly`,
          { headers: { "retry-after": "1" } },
        );
      const declared = Number(req.headers["content-length"] ?? NaN);
      if (declared > maxJson) throw tooLarge(maxJson);
      if (declared > 0 && buffered.used + declared > buffered.limit) throw overloaded();
      // What is read stays charged until the response closes: the parsed body lives as long.
      let taken = 0;
      res.once("close", () => buffered.give(taken));
      attachMeter(req, {
        hold: (bytes) => {
          if (!buffered.take(bytes)) throw overloaded();
          taken += bytes;
        },
      });
      let body: Buffer;
      try {
        body = await readBody(req, maxJson);
      } catch (err) {
        dropBody(req);
        throw err;
      }
      json = parseJsonObject(body);
      json = stripClubFields(json);
      if (typeof json.model === "string") modelId ??= json.model;
    } else if (endpoint.body === "none") {
      req.resume();
      modelId ??= url.searchParams.get("model") ?? undefined;
    }
    if (!modelId)
      return sendError(
        res,
        400,
        "invalid_request_error",
        `"model" is required on ${endpoint.path}`,
      );

    if (pausedNow(modelId)) return;
    const candidates = servedFor(modelId);
    // Engines that serve the same model share its load: the request goes to one with room.
    const chosen = load.choose(candidates.map((c) => c.service));
    const found = candidates.find((c) => c.service === chosen);
    if (!found) return notServed(modelId);
    const bodyDenial = denied(modelId);
    if (bodyDenial) return sendError(res, 403, "permission_error", bodyDenial);
    const { service, model } = found;
    // An engine that lists what it serves (`Adapter.serves`) never sees a call for anything else.
    const { serves, displayName } = service.adapter;
    if (serves && !serves.includes(endpoint.path)) throw notServedBy(displayName, { endpoint });
    if (json) json.model = model.servedId;
    // Every URL an engine would fetch: in the body as sent, and in its chat translation
    // (Responses and Messages parts become chat parts the engine may fetch).
    const asChat = json && chatView(endpoint.path, json);
    const unsafe = json
      ? ((await unsafeRequestUrl(json, options.urlGuard)) ??
        (asChat && asChat !== json ? await unsafeRequestUrl(asChat, options.urlGuard) : undefined))
      : undefined;
    if (unsafe) return sendError(res, 400, "invalid_request_error", unsafe);

    const headers: Record<string, string> = {};
    for (const name of PASS_HEADERS) {
      const v = req.headers[name];
      if (typeof v === "string") headers[name] = v;
    }
    if (json) headers["content-type"] = "application/json";

    const abort = new AbortController();
    let release: Release | undefined;
    let engineLease: (() => void) | undefined;
    const job = progress.begin({
      request_id: requestId,
      model: model.id,
      endpoint: endpoint.path,
      service: service.name,
      member: who.owner ? null : who.member,
    });
    let bytes = 0;
    // An event handler must never throw: a throw here is an uncaught exception, which ends the
    // daemon and every tunnel with it. Each step after an answer is guarded on its own, so a
    // fault in the bookkeeping is logged and never keeps a queue slot or an engine lease.
    const guarded = (what: string, step: () => void): void => {
      try {
        step();
      } catch (err) {
        log.error({ requestId, err: describeError(err) }, "after a request, %s failed", what);
      }
    };
    // Set as the caller's response closes. A slot or lease handed over after that is given back
    // where it arrives: a batch of RST_STREAMs closes its streams in one read, every `close`
    // running before any await resumes, so a queued request may be granted the slot another
    // gave back in the turn its own caller left, when its close handler had nothing to release.
    let left = false;
    const gone = (): boolean => left;
    res.on("close", () => {
      left = true;
      // Not `writableFinished`: HTTP/2's compatibility response reports it true for a stream
      // the relay reset, so a consumer who left before the answer began was never noticed. Nor
      // `writableEnded` alone: a tunnel stream (`tunnel/exchange.ts`) the relay resets is ended
      // by Node as it closes; `aborted` says it was reset before this side ended it.
      const cut = !res.writableEnded || (res as { aborted?: boolean }).aborted === true;
      if (cut) guarded("cancelling its engine call", () => abort.abort());
      // What was sent is not how it ended: a caller who left is logged and counted as 499.
      const status = cut ? ABORTED_STATUS : res.statusCode;
      guarded("releasing its queue slot", () => release?.());
      guarded("releasing its engine", () => engineLease?.());
      let tokens: number | null = null;
      guarded("counting its tokens", () => (tokens = job.end()));
      logRequest(
        {
          requestId,
          model: model.id,
          endpoint: endpoint.path,
          service: service.name,
          status,
          ms: Math.round(performance.now() - t0),
          bytes,
          ...(cut ? { aborted: true, sent: res.headersSent ? res.statusCode : null } : {}),
        },
        endpoint.method,
      );
      const done: RequestDoneInfo = {
        requestId,
        ...(who.owner ? {} : { member: who.member }),
        model: model.id,
        endpoint: endpoint.path,
        service: service.name,
        status,
        ms: performance.now() - t0,
        bytes,
        tokens,
        aborted: cut,
      };
      guarded("reporting it done", () => options.onRequestDone?.(done));
    });

    const slot = load.acquire(service, abort.signal, who);
    if (!slot) {
      req.resume();
      const retry = load.retryAfter(service);
      const message = `${options.providerName} is at capacity for ${model.id} (${load.inFlight(service.name)} running, ${load.queued(service.name)} waiting): retry in ${retry} s`;
      return sendError(res, 429, "rate_limit_error", message, {
        "retry-after": String(retry),
      });
    }
    try {
      release = await slot;
    } catch {
      return; // the consumer left while waiting
    }
    if (gone()) {
      release();
      return;
    }
    // A managed engine starts now if it is stopped; the queue slot stays held meanwhile.
    try {
      const lease = options.engines?.acquire(service.name, abort.signal);
      if (lease) engineLease = await lease;
      if (gone()) {
        release();
        engineLease?.();
        return;
      }
    } catch (err) {
      if (abort.signal.aborted) return;
      if (!(err instanceof EngineUnavailable)) throw err;
      req.resume();
      return sendError(res, 503, "overloaded", err.message, {
        "retry-after": String(err.retryAfter),
      });
    }
    // Once running, the engine's own description may name the model differently.
    const live = service.info?.models.find((m) => m.id === model.id) ?? model;
    if (json) json.model = live.servedId;
    const upload = json ? undefined : limitBody(req, maxUpload);
    let reply;
    const call = {
      endpoint,
      path: url.pathname + url.search,
      headers,
      ...(upload ? { stream: upload } : json ? { json } : {}),
      model: live,
      upstream: service.upstream,
      signal: abort.signal,
      progress: job.report,
    };
    try {
      // Responses and Messages are translated to chat for engines that do not serve them.
      reply = await execute(service.adapter, call).catch(async (err: unknown) => {
        // A managed engine that just crashed refuses connections a moment before its exit is
        // seen: then it starts again and gets the call, which it never received, once more.
        const again =
          json && engineLease && refusedConnection(err)
            ? await options.engines?.afterRefusal?.(service.name, abort.signal)
            : undefined;
        if (!again) throw err;
        if (gone()) {
          again();
          throw err;
        }
        engineLease?.();
        engineLease = again;
        return execute(service.adapter, call);
      });
    } catch (err) {
      if (abort.signal.aborted) return;
      if (err instanceof EngineUnavailable)
        return sendError(res, 503, "overloaded", err.message, {
          "retry-after": String(err.retryAfter),
        });
      if (upload?.exceeded) throw tooLarge(maxUpload, "upload");
      // A request the adapter refuses (a bad form, a field out of range) has its own status.
      if (err instanceof HttpError) throw err;
      // A job the engine ran and reported failed says nothing about whether it is up.
      if (err instanceof UpstreamError && err.code !== "upstream_job_failed")
        options.onEngineFailure?.(service.name);
      const message =
        err instanceof UpstreamError
          ? err.message
          : `${service.name} failed: ${describeError(err)}`;
      // The operator's to fix (an engine down, a workflow the engine refuses): say why here.
      log.warn(
        { requestId, service: service.name, model: model.id, reason: message },
        "engine failed",
      );
      return sendError(res, 502, "upstream_error", message);
    }
    if (reply.status >= 500) {
      const text = (await readCapped(reply.body, 64 * 1024))?.toString("utf8") ?? "";
      return sendError(
        res,
        502,
        "upstream_error",
        `${service.adapter.displayName} answered ${reply.status}: ${upstreamMessage(text)}`,
      );
    }
    const answer = reply;
    /** The answer read whole, up to `limit` bytes (undefined past it); null once answered. */
    const readWhole = async (limit: number): Promise<{ body: Buffer | undefined } | null> => {
      try {
        const body = await readCapped(answer.body, limit);
        return abort.signal.aborted ? null : { body };
      } catch (err) {
        if (abort.signal.aborted) return null;
        options.onEngineFailure?.(service.name);
        sendError(res, 502, "upstream_error", `${service.name} broke off: ${describeError(err)}`);
        return null;
      }
    };
    if (reply.status >= 400) {
      const read = await readWhole(ENGINE_ERROR_BYTES);
      if (!read) return;
      bytes = read.body?.length ?? 0;
      return answerRefusal(
        res,
        reply.status,
        reply.headers,
        read.body,
        service.adapter.displayName,
      );
    }
    const length = Number(reply.headers["content-length"] ?? NaN);
    if (length <= WHOLE_REPLY_BYTES) {
      // A small answer of known size goes out whole: headers, body and end in one write, which
      // over the tunnel is one WebSocket message instead of two or three.
      const read = await readWhole(WHOLE_REPLY_BYTES);
      if (!read) return;
      const { body } = read;
      if (body === undefined)
        return sendError(res, 502, "upstream_error", `${service.name} sent more than it announced`);
      bytes = body.length;
      job.sent(body, false);
      res.writeHead(reply.status, reply.headers);
      res.end(body);
      return;
    }
    res.writeHead(reply.status, reply.headers);
    const events = /^text\/event-stream/i.test(reply.headers["content-type"] ?? "");
    // Reply bodies are byte streams (`EngineReply.body`); text from an adapter that broke
    // that contract is counted as its UTF-8 bytes rather than as characters.
    reply.body.on("data", (chunk: Buffer | string) => {
      const piece = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
      bytes += piece.length;
      job.sent(piece, events);
    });
    pipeline(reply.body, res, (err) => {
      if (!err || abort.signal.aborted) return;
      // undici's errors (UND_ERR_*) mean the engine broke off; others, that the consumer left.
      if ((err as { code?: string }).code?.startsWith("UND_ERR")) {
        log.warn({ requestId, err: describeError(err) }, "engine stream broke off");
        options.onEngineFailure?.(service.name);
      }
      res.destroy();
    });
  }

  const gateway = ((req: GatewayRequest, res: GatewayResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (!answerError(res, err, "the provider failed to handle this request"))
        log.error({ err: describeError(err) }, "gateway request failed");
    });
  }) as Gateway;
  gateway.load = load;
  gateway.progress = progress;
  gateway.buffered = buffered;
  return gateway;
}

/** The engine refused the connection: it never received the request. */
function refusedConnection(err: unknown): boolean {
  return (
    err instanceof UpstreamError &&
    err.code === "upstream_unreachable" &&
    failureCode(err.cause) === "ECONNREFUSED"
  );
}

/** The most of an engine's error answer read (its message is in the first bytes). */
const ENGINE_ERROR_BYTES = 64 * 1024;
/** The club's error type for an engine's refusal, by its status; else `invalid_request_error`. */
const REFUSAL_TYPES: Partial<Record<number, ErrorType>> = {
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
};

/**
 * An engine's 4xx reaches the caller in the club's envelope, as every error does: as the engine
 * sent it when it already is one (OpenAI-style engines), else with the engine's message put in
 * one (FastAPI's `{"detail": …}` from Kokoro-FastAPI, Ollama's `{"error": "…"}`, plain text),
 * the status kept. A 401 or 403 is the engine refusing this rig's own credentials, never the
 * member's key (the relay checked that): 502, which says to retry or pick another provider.
 */
function answerRefusal(
  res: GatewayResponse,
  status: number,
  headers: Record<string, string>,
  body: Buffer | undefined,
  engine: string,
): void {
  const text = body?.toString("utf8") ?? "";
  if (status === 401 || status === 403)
    return sendError(
      res,
      502,
      "upstream_error",
      `${engine} refused this rig's credentials (${status}): ${upstreamMessage(text)}`,
    );
  if (body !== undefined && isEnvelope(text)) {
    res.writeHead(status, headers);
    res.end(body);
    return;
  }
  const retry = headers["retry-after"];
  sendError(
    res,
    status,
    REFUSAL_TYPES[status] ?? "invalid_request_error",
    `${engine} refused the request (${status}): ${body === undefined ? `an answer over ${ENGINE_ERROR_BYTES} bytes` : upstreamMessage(text)}`,
    retry ? { "retry-after": retry } : {},
  );
}

/** Whether `text` is an error in the club's (OpenAI's) envelope: `{"error": {"message": "…"}}`. */
function isEnvelope(text: string): boolean {
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } } | null;
    return typeof body?.error?.message === "string";
  } catch {
    return false;
  }
}

/** The message inside an engine's error body, whatever shape it uses. */
function upstreamMessage(text: string): string {
  try {
    const body = JSON.parse(text) as {
      error?: { message?: unknown } | string;
      message?: unknown;
      detail?: { message?: unknown } | string;
    };
    if (typeof body.error === "string") return body.error;
    if (typeof body.error?.message === "string") return body.error.message;
    if (typeof body.message === "string") return body.message;
    if (typeof body.detail === "string") return body.detail;
    // FastAPI servers (Kokoro-FastAPI) raise HTTPException with an OpenAI-like detail object.
    if (typeof body.detail?.message === "string") return body.detail.message;
    // and answer a body that fails validation with a list of what is wrong and where.
    if (Array.isArray(body.detail)) {
      const items = (body.detail as unknown[]).slice(0, 3).map((item) => {
        const d = (typeof item === "object" && item !== null ? item : {}) as {
          loc?: unknown;
          msg?: unknown;
        };
        const where = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : "";
        return `${where ? `${where}: ` : ""}${typeof d.msg === "string" ? d.msg : "invalid"}`;
      });
      if (items.length > 0) return items.join("; ").slice(0, 500);
    }
  } catch {
    // not JSON: use the text
  }
  return text.slice(0, 500) || "(empty body)";
}
