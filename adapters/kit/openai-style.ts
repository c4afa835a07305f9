/**
 * The shared helper for engines that speak OpenAI over HTTP: one keep-alive undici pool per
 * upstream origin, forwarding of one call, and a small JSON getter for probes.
 */
import { createRequire } from "node:module";
import type { Pool as PoolType } from "undici";
import { UpstreamError } from "../../src/errors.ts";
import { readCapped } from "../../src/http/read-capped.ts";
import { HOP_BY_HOP } from "../../src/protocol/index.ts";
import type { EngineCall, EngineReply, Upstream } from "../adapter.ts";

/** How errors name an engine: "cannot reach `name` at URL (…): `hint`". */
export interface EngineLabel {
  name: string;
  hint: string;
}

const GENERIC: EngineLabel = { name: "the model server", hint: "is it running?" };

/** Connecting is quick on a LAN or loopback; a slow connect means nothing useful is there. */
const CONNECT_TIMEOUT_MS = 3_000;
/** Response headers kept from the engine; everything else stays on the rig. */
const REPLY_HEADERS = [
  "content-type",
  "content-length",
  "cache-control",
  "x-request-id",
  "retry-after",
];

/**
 * undici's `Pool` by itself. The package's entry point also loads fetch, WebSocket and cookies,
 * and through them Node's own bundled copy of undici: about 9 MiB of the daemon's idle memory
 * for code it never runs. This loads the pool and adds the request API to it, as the entry
 * point does. The deep paths are not public API, so a release that moves them falls back to
 * the entry point.
 */
const Pool = ((): typeof PoolType => {
  const require = createRequire(import.meta.url);
  try {
    const pool = require("undici/lib/dispatcher/pool.js") as typeof PoolType;
    const api = require("undici/lib/api/index.js") as object;
    const dispatcher = require("undici/lib/dispatcher/dispatcher.js") as { prototype: object };
    Object.assign(dispatcher.prototype, api);
    if (typeof pool.prototype.request !== "function") throw new Error("no request API");
    return pool;
  } catch {
    return (require("undici") as { Pool: typeof PoolType }).Pool;
  }
})();
type Pool = PoolType;

const pools = new Map<string, Pool>();

function poolFor(origin: string): Pool {
  let pool = pools.get(origin);
  if (!pool) {
    // No headers or body timeout: a long prompt or a slow generation may stay silent for
    // minutes. Callers bound waits with their AbortSignal instead.
    pool = new Pool(origin, {
      connect: { timeout: CONNECT_TIMEOUT_MS },
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    pools.set(origin, pool);
  }
  return pool;
}

/** Closes every upstream pool at once, dropping open sockets (shutdown and tests). */
export async function closeUpstreamPools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((pool) => pool.destroy()));
}

/**
 * Each upstream base URL split once: its origin, and its path prefix without trailing slashes.
 * The URLs are the engines' (configured, or found by a scan), never a request's; past
 * `MAX_BASES` of them the map starts over, so a scan of many ports cannot grow it for good.
 */
const bases = new Map<string, { origin: string; prefix: string }>();
const MAX_BASES = 256;

/** Splits an upstream base URL (which may carry a path prefix) into origin and full path. */
function target(upstream: Upstream, path: string): { origin: string; path: string } {
  let base = bases.get(upstream.url);
  if (!base) {
    let url: URL;
    try {
      url = new URL(upstream.url);
    } catch (err) {
      throw new UpstreamError("upstream_bad_url", `invalid upstream URL ${upstream.url}`, {
        cause: err,
      });
    }
    base = { origin: url.origin, prefix: url.pathname.replace(/\/+$/, "") };
    if (bases.size >= MAX_BASES) bases.clear();
    bases.set(upstream.url, base);
  }
  return { origin: base.origin, path: base.prefix + path };
}

/** The errno-style code of a connection failure (looking inside happy-eyeballs aggregates). */
export function failureCode(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const { code, errors } = err as { code?: unknown; errors?: unknown };
  if (typeof code === "string") return code;
  if (Array.isArray(errors)) return errors.map(failureCode).find((c) => c !== undefined);
  return undefined;
}

const DETAILS: Record<string, string> = {
  UND_ERR_SOCKET: "connection closed before an answer",
  UND_ERR_CONNECT_TIMEOUT: "connect timed out",
  UND_ERR_CLOSED: "connection closed",
};

function unreachable(err: unknown, url: string, label: EngineLabel): UpstreamError {
  const code = failureCode(err);
  const detail = code === undefined ? "no answer" : (DETAILS[code] ?? code);
  return new UpstreamError(
    "upstream_unreachable",
    `cannot reach ${label.name} at ${url} (${detail}): ${label.hint}`,
    { cause: err },
  );
}

/** Response headers as undici reports them. */
type RawHeaders = Record<string, string | string[] | undefined>;

function flatten(headers: RawHeaders, keep?: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    const key = name.toLowerCase();
    if (value === undefined || HOP_BY_HOP.has(key) || (keep && !keep.includes(key))) continue;
    out[key] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

function requestHeaders(call: EngineCall): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(call.headers)) {
    const key = name.toLowerCase();
    if (HOP_BY_HOP.has(key) || key === "authorization") continue;
    // The JSON body is serialised again here, so the caller's length no longer applies.
    if (key === "content-length" && call.json !== undefined) continue;
    headers[key] = value;
  }
  if (call.json !== undefined) headers["content-type"] ??= "application/json";
  if (call.upstream.apiKey) headers.authorization = `Bearer ${call.upstream.apiKey}`;
  return headers;
}

/**
 * Forwards one call to an OpenAI-style engine over its keep-alive pool and resolves once the
 * engine answered with a status; the body streams. Aborting `call.signal` destroys the
 * upstream socket, which is how these engines learn that a generation should stop.
 * Rejects with an `UpstreamError` (`upstream_unreachable`) when the engine cannot be reached
 * or drops the connection before answering, and with `call.signal.reason` when aborted.
 * @example
 * const reply = await forwardOpenAI(call, { name: "llama.cpp", hint: "is llama-server running?" });
 * reply.body.pipe(res);
 */
export async function forwardOpenAI(call: EngineCall, label = GENERIC): Promise<EngineReply> {
  const { origin, path } = target(call.upstream, call.path);
  const body = call.json !== undefined ? JSON.stringify(call.json) : (call.stream ?? null);
  try {
    const res = await poolFor(origin).request({
      path,
      method: call.endpoint.method,
      headers: requestHeaders(call),
      body,
      signal: call.signal,
    });
    return { status: res.statusCode, headers: flatten(res.headers, REPLY_HEADERS), body: res.body };
  } catch (err) {
    if (call.signal.aborted) throw err;
    if (failureCode(err)?.startsWith("UND_ERR_INVALID_ARG")) throw err;
    throw unreachable(err, call.upstream.url, label);
  }
}

/** What `getJson` saw: all response headers (lower-case), the parsed body if it was JSON, the text. */
export interface JsonAnswer {
  status: number;
  headers: Record<string, string>;
  json: unknown;
  /** The body as text (`GET /` of Ollama answers plain text); empty when over the size cap. */
  text: string;
}

/** Probes may hit any server on a scanned port; none of the answers we read is this large. */
const MAX_JSON_BYTES = 4 * 1024 * 1024;

function seconds(ms: number): string {
  return `${String(Math.round(ms / 100) / 10)} s`;
}

async function requestJson(
  upstream: Upstream,
  path: string,
  body: Record<string, unknown> | undefined,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<JsonAnswer> {
  const { origin, path: fullPath } = target(upstream, path);
  const timeout = AbortSignal.timeout(timeoutMs);
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (upstream.apiKey) headers.authorization = `Bearer ${upstream.apiKey}`;
  try {
    const res = await poolFor(origin).request({
      path: fullPath,
      method: body === undefined ? "GET" : "POST",
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.any([signal, timeout]),
    });
    const text = (await readCapped(res.body, MAX_JSON_BYTES))?.toString("utf8") ?? "";
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.statusCode, headers: flatten(res.headers), json, text };
  } catch (err) {
    const timedOut =
      timeout.aborted || (signal.reason as Error | undefined)?.name === "TimeoutError";
    if (timedOut) {
      const within = timeout.aborted ? ` within ${seconds(timeoutMs)}` : "";
      const message = `no answer from ${upstream.url}${path}${within}`;
      throw new UpstreamError("upstream_timeout", message, { cause: err });
    }
    if (signal.aborted) throw signal.reason;
    throw unreachable(err, upstream.url, GENERIC);
  }
}

/**
 * GETs a path for a probe or a description, with the upstream key when one is set. `json` is
 * undefined when the body is not JSON. Rejects with an `UpstreamError`: `upstream_timeout`
 * when no complete answer came within `timeoutMs` or before `signal` timed out,
 * `upstream_unreachable` when the connection failed; other aborts reject with the reason.
 */
export function getJson(
  upstream: Upstream,
  path: string,
  signal: AbortSignal,
  timeoutMs = 5_000,
): Promise<JsonAnswer> {
  return requestJson(upstream, path, undefined, signal, timeoutMs);
}

/**
 * POSTs a JSON body and reads the JSON answer, like `getJson` (Ollama's `POST /api/show`).
 * @example const show = await postJson(upstream, "/api/show", { model: "llama3.2" }, signal);
 */
export function postJson(
  upstream: Upstream,
  path: string,
  body: Record<string, unknown>,
  signal: AbortSignal,
  timeoutMs = 5_000,
): Promise<JsonAnswer> {
  return requestJson(upstream, path, body, signal, timeoutMs);
}
