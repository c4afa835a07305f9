/**
 * The club's public API as the relay serves it: authentication, `/v1/models`, and every
 * inference endpoint of the endpoint table, routed to a provider that serves the model.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Readable } from "node:stream";
import { ABORTED_STATUS, requestLines, type Logger } from "../log.ts";
import { describeError } from "../errors.ts";
import {
  ENDPOINTS,
  SHARING_FIELDS,
  findEndpoint,
  stripClubFields,
  type Endpoint,
} from "../protocol/index.ts";
import { DEFAULT_MAX_JSON_BYTES } from "./uploads.ts";
import { meterOf, parseJsonObject, readBody } from "../http/body.ts";
import { forward } from "./forward.ts";
import { SSE_ENDPOINTS } from "./keepalive.ts";
import type { Work } from "./jobs/work.ts";
import { newId } from "./jobs/ids.ts";
import type { AuthThrottle } from "./auth-throttle.ts";
import { anthropicErrors, apiKeyHeader, speaksAnthropic } from "./anthropic.ts";
import { KeyRing } from "./keys.ts";
import { MultipartFilter, boundaryOf } from "../http/multipart.ts";
import type { ProviderState } from "./provider-state.ts";
import type { Registry } from "./registry.ts";
import type { KeyLimiter, RateLimiter } from "./rate-limit.ts";
import { unknownEndpoint } from "../http/error.ts";
import { answerError, sendError, sendJson } from "../http/respond.ts";
import { decodePart, parseTarget } from "./target.ts";
import type { Uploads } from "./uploads.ts";
import { askUsage } from "./usage-meter.ts";
import { isUsagePath, usageRoute } from "./usage-route.ts";
import type { Media } from "./media/media.ts";
import type { MediaPlan } from "./media/plan.ts";
import { isFilesPath, isOpenMediaPath } from "./media/routes.ts";
import { isVoicePath } from "./media/voice-routes.ts";
import { readSharing } from "./media/sharing.ts";
import type { ClubUi } from "./ui-routes.ts";

export interface ApiOptions {
  keys: KeyRing;
  registry: Registry;
  log: Logger;
  /**
   * Largest JSON body accepted (default 16 MiB: a chat with a few inline images; media uploads
   * are multipart and streamed, never buffered).
   */
  maxJsonBytes?: number;
  /** Request bodies per member: how many at once, bytes held, the stall cut (`uploads.ts`). */
  uploads?: Uploads;
  /** Async jobs, batches and workflows; without it they are answered 503 `async_disabled`. */
  work?: Work;
  /** Per-key request rate limit (429 beyond it). */
  rateLimit?: KeyLimiter;
  /** Keyless requests (media URLs, the gallery) per source address (429 beyond it). */
  openRateLimit?: RateLimiter;
  /** Failed key checks per source address (429 beyond them). */
  throttle?: AuthThrottle;
  /**
   * How long a streamed (SSE) answer may stay silent before the relay commits 200 and sends
   * SSE comments, and how often it sends them then (default 15 s; 0 never).
   */
  keepAliveMs?: number;
  /** The media library: results kept and served by URL (`media/`); without it, none are. */
  media?: Media;
  /** The club's page (`/`, `/ui`, `/ui/api/*`); without it, those paths are unknown. */
  ui?: ClubUi;
}

/**
 * One of the member's own rigs as `GET /v1/providers` shows it to its owner: paused or not,
 * what it advertises, and whom each model is shared with.
 */
/** The seconds a request of `key` must wait (0: go), from either kind of limiter. */
function taken(limiter: KeyLimiter | undefined, key: string): number | Promise<number> {
  return limiter ? limiter.take(key) : 0;
}

function providerView(link: ProviderState) {
  return {
    object: "provider",
    name: link.name,
    version: link.version,
    connected_at: Math.floor(link.connectedAt / 1000),
    paused: link.paused ?? null,
    in_flight: link.inFlight,
    models: link.cards.map((c) => ({
      id: c.id,
      service_type: c.service_type,
      access: link.access(c.id),
      paused: link.pausedWhy(c.id) ?? null,
    })),
  };
}

/** Paths of the relay's long-running work, handed to `work` (answered `async_disabled` without). */
const ASYNC_PREFIXES = ["/v1/jobs", "/v1/batches", "/v1/workflows"];
const KNOWN_PATHS = new Set(ENDPOINTS.map((e) => e.path));
/** The consumer's headers a provider gets. */
const PASSED_HEADERS = ["content-type", "accept"] as const;

export function createApi(
  options: ApiOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const { keys, registry, log, work } = options;
  const logRequest = requestLines(log);
  const maxJson = options.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
  const keepAliveMs = options.keepAliveMs ?? 15_000;

  async function handle(req: IncomingMessage, res: ServerResponse, requestId: string) {
    const url = parseTarget(req.url);
    if (!url) {
      req.resume();
      sendError(res, 400, "invalid_request_error", "malformed request target");
      return;
    }
    const path = url.pathname;
    const method = req.method ?? "GET";
    if (speaksAnthropic(path)) anthropicErrors(res);
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (options.ui?.isPage(path)) {
      options.ui.page(req, res, path);
      return;
    }
    const throttled = options.throttle?.wait(req);
    if (throttled) {
      req.resume();
      sendError(
        res,
        429,
        "rate_limit_error",
        `too many refused keys from this address: retry in ${throttled} s`,
        { "retry-after": String(throttled) },
      );
      return;
    }
    // Anthropic's clients send the key as `x-api-key`; any endpoint takes either.
    const key = keys.lookup(
      KeyRing.bearer(req.headers.authorization) ?? apiKeyHeader(req.headers["x-api-key"]),
    );
    if (options.media && isOpenMediaPath(path)) {
      // Anyone may fetch a URL: without a key, counted per source address instead.
      const wait = key
        ? await taken(options.rateLimit, key.id)
        : options.openRateLimit?.take(options.throttle?.source(req) ?? "");
      if (wait) {
        req.resume();
        sendError(res, 429, "rate_limit_error", `too many requests: retry in ${wait} s`, {
          "retry-after": String(wait),
        });
        return;
      }
      await options.media.open(req, res, url, key?.member);
      return;
    }
    if (!key) {
      options.throttle?.fail(req);
      req.resume();
      sendError(
        res,
        401,
        "authentication_error",
        "missing or invalid API key: send Authorization: Bearer <key> (or x-api-key: <key>)",
      );
      return;
    }
    const { member } = key;
    const wait = await taken(options.rateLimit, key.id);
    if (wait) {
      req.resume();
      sendError(
        res,
        429,
        "rate_limit_error",
        `too many requests for this key: retry in ${wait} s`,
        {
          "retry-after": String(wait),
        },
      );
      return;
    }
    // A club-wide limiter asked the database: the consumer may have left meanwhile.
    if (req.socket.destroyed) return;
    if (options.ui?.isApi(path)) {
      await options.ui.api(req, res, path, key);
      return;
    }
    if (options.uploads && !options.uploads.admit(req, res, member)) return;
    if (method === "GET" && (path === "/v1/models" || path === "/v1/models/")) {
      sendJson(res, 200, { object: "list", data: registry.cards(member) });
      return;
    }
    if (method === "GET" && (path === "/v1/providers" || path === "/v1/providers/")) {
      sendJson(res, 200, { object: "list", data: registry.own(member).map(providerView) });
      return;
    }
    if (method === "GET" && path.startsWith("/v1/models/")) {
      const id = decodePart(path.slice("/v1/models/".length));
      if (id === null) {
        sendError(res, 400, "invalid_request_error", "malformed escape in the model id");
        return;
      }
      const card = registry.cards(member).find((c) => c.id === id);
      if (card) sendJson(res, 200, card);
      else
        sendError(res, 404, "no_provider", `no online provider serves model ${JSON.stringify(id)}`);
      return;
    }
    if (work && isUsagePath(path)) {
      await usageRoute(work.usage, req, res, member, url);
      return;
    }
    if (options.media && isFilesPath(path)) {
      await options.media.files(req, res, url, member);
      return;
    }
    if (options.media && isVoicePath(path)) {
      await options.media.voices(req, res, url, member);
      return;
    }
    if (ASYNC_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`))) {
      if (work) {
        await work.handle(req, res, member, url);
        return;
      }
      sendError(
        res,
        503,
        "async_disabled",
        "async jobs, batches and workflows are not enabled on this relay",
      );
      return;
    }
    const endpoint = findEndpoint(method, path);
    if (!endpoint) {
      throw unknownEndpoint(method, path, KNOWN_PATHS);
    }
    await route(req, res, endpoint, member, url, requestId);
  }

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    endpoint: Endpoint,
    member: string,
    url: URL,
    requestId: string,
  ) {
    const headers: Record<string, string> = {};
    for (const name of PASSED_HEADERS) {
      const v = req.headers[name];
      if (typeof v === "string") headers[name] = v;
    }
    let model: unknown;
    let body: Buffer | Readable | null = null;
    let streamed = false;
    let strip = false;
    let plan: MediaPlan | undefined;
    if (endpoint.body === "json") {
      let json = parseJsonObject(await readBody(req, maxJson));
      readSharing(json);
      if (json.async === true) {
        if (endpoint.async && work) await work.submit(req, res, member, endpoint, json);
        else if (endpoint.async)
          sendError(
            res,
            503,
            "async_disabled",
            'async is not enabled on this relay: send the request without "async"',
          );
        else
          sendError(
            res,
            400,
            "invalid_request_error",
            `${endpoint.path} is synchronous only: remove "async"`,
          );
        return;
      }
      model = json.model;
      if (options.media) json = await options.media.prepare(endpoint.path, member, json);
      if (typeof model === "string" && model !== "") {
        await options.media?.planner.prepare(endpoint, member);
        plan = options.media?.planner.plan(req, res, endpoint, member, model, json);
      }
      json = plan?.body ?? json;
      streamed = json.stream === true && SSE_ENDPOINTS.has(endpoint.path);
      if (work && streamed) strip = askUsage(endpoint.path, json);
      body = Buffer.from(JSON.stringify(stripClubFields(json)));
      headers["content-type"] = "application/json";
    } else if (endpoint.body === "multipart") {
      const boundary = boundaryOf(req.headers["content-type"]);
      if (!boundary) {
        sendError(res, 400, "invalid_request_error", `${endpoint.path} takes multipart/form-data`);
        return;
      }
      // What it holds back until the model is known is in memory, like a JSON body: charged so.
      const meter = meterOf(req);
      const filter = new MultipartFilter({
        boundary,
        dropFields: SHARING_FIELDS,
        captureFields: ["model"],
        ...(meter ? { hold: (bytes: number) => meter.hold(bytes) } : {}),
      });
      req.pipe(filter);
      req.on("aborted", () => filter.destroy());
      model = (await filter.captured).model;
      body = filter;
      try {
        if (typeof model === "string" && model !== "") {
          await options.media?.planner.prepare(endpoint, member);
          plan = options.media?.planner.plan(req, res, endpoint, member, model);
        }
      } catch (err) {
        filter.destroy();
        throw err;
      }
    } else {
      model = url.searchParams.get("model") ?? undefined;
      req.resume();
    }
    if (typeof model !== "string" || model === "") {
      if (body && !Buffer.isBuffer(body)) body.destroy();
      sendError(res, 400, "invalid_request_error", `"model" is required on ${endpoint.path}`);
      return;
    }
    let link = registry.pick(member, model, endpoint.serviceType);
    if (!link) {
      if (body && !Buffer.isBuffer(body)) body.destroy();
      sendError(
        res,
        404,
        "no_provider",
        `no online provider serves model ${JSON.stringify(model)} for ${endpoint.path}`,
      );
      return;
    }
    const started = Date.now();
    // A provider at capacity answers 429; a buffered body can go to another one that serves it.
    const tried = new Set<ProviderState>();
    let outcome: Awaited<ReturnType<typeof forward>>;
    for (;;) {
      tried.add(link);
      const next = Buffer.isBuffer(body)
        ? registry.pick(member, model, endpoint.serviceType, tried)
        : undefined;
      outcome = await forward({
        link,
        method: endpoint.method,
        path: url.pathname + url.search,
        headers,
        body,
        model,
        member,
        requestId,
        req,
        res: plan?.sink ?? res,
        log,
        // A rig at capacity (429) or whose managed engine cannot start now (503): the next one.
        ...(next ? { retryOn: (status: number) => status === 429 || status === 503 } : {}),
        ...(streamed && keepAliveMs > 0 ? { keepAliveMs } : {}),
        ...(work ? { usage: { sink: work.usage, endpoint: endpoint.path, strip } } : {}),
      });
      if (outcome !== "retry" || !next) break;
      log.debug(
        { requestId, from: link.name, to: next.name },
        "provider at capacity; trying another",
      );
      link = next;
    }
    await plan?.finish();
    logRequest(
      {
        requestId,
        member,
        model,
        endpoint: endpoint.path,
        provider: link.name,
        // As the daemon logs it: what was sent is not how it ended.
        ...(outcome === "left"
          ? { status: ABORTED_STATUS, aborted: true, sent: res.headersSent ? res.statusCode : null }
          : { status: res.statusCode }),
        ms: Date.now() - started,
      },
      endpoint.method,
    );
  }

  // The last line of defence: whatever escapes a request's handling is answered 500 (or the
  // response cut, if it had begun) and logged with the request id; the relay goes on serving.
  return (req, res) => {
    const requestId = newId("req");
    handle(req, res, requestId).catch((err: unknown) => {
      if (answerError(res, err, "the relay failed to handle this request")) return;
      log.error(
        { err: describeError(err), requestId, method: req.method, path: req.url?.slice(0, 200) },
        "relay request failed",
      );
    });
  };
}
