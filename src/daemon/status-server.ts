/**
 * The daemon's status server, on loopback only: `/healthz`, `/ready` (200 while a tunnel is
 * up), `/status` (JSON, what `club-provider status` and `models` read), `/metrics`
 * (Prometheus text), `POST /pause` and `POST /resume` (what `club-provider pause` sends), and
 * the rig's page (`/`, `/events`, `/ui/assets/*`, see status-ui.ts).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseAccess } from "../config.ts";
import type { Logger } from "../log.ts";
import type { Access } from "../protocol/index.ts";
import { METRICS_CONTENT_TYPE } from "./metrics.ts";
import { CSRF_HEADER, type RigPage } from "./status-ui.ts";

/** What the status server reports on; the daemon in production, a stub in tests. */
export interface StatusSource {
  ready(): boolean;
  status(): unknown;
  /** The Prometheus exposition; `/metrics` answers 404 without it. */
  readonly metrics?: { render(): string };
  /** The owner's pause; `/pause` and `/resume` answer 404 without it. */
  readonly pausing?: {
    /** Pauses the rig with the owner's words (may be empty); answers the new state. */
    pause(reason: string | undefined): unknown;
    resume(): unknown;
  };
  /** The owner's sharing; `/share` and `/unshare` answer 404 without it. */
  readonly sharingControl?: {
    /** Sets a model's or service's access; undefined for a name the rig does not serve. */
    set(name: string, access: Access): unknown;
  };
  /** The rig's page; `/` and `/events` answer 404 without it. */
  readonly page?: RigPage | undefined;
  /** Managed engines (`engines` setting): `/engines…` answers 404 without them. */
  readonly engineControl?: EngineControl | undefined;
}

/** What `/engines`, `/engines/NAME/start|stop|logs` do. */
export interface EngineControl {
  list(): unknown[];
  /** The engine's view once the start began, or undefined for an unknown name. */
  start(name: string): unknown;
  /** Resolves to the engine's view once it stopped, or undefined for an unknown name. */
  stop(name: string): Promise<unknown>;
  logs(name: string): string[] | undefined;
}

const ENGINE_PATH = /^\/engines\/([A-Za-z0-9._-]{1,64})\/(start|stop|logs)$/;

/** Largest body `POST /pause` reads: a reason is at most a few hundred characters. */
const MAX_POST_BYTES = 16 * 1024;

/** Reads a small JSON object body; undefined when it is not one (or too large). */
async function readJson(req: http.IncomingMessage): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_POST_BYTES) return undefined;
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
  if (text === "") return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)
      ? (parsed as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why a request must not be answered, with its status, or undefined when it may. Only loopback
 * Host values are served: a web page whose name was DNS-rebound to 127.0.0.1 sends its own name
 * as Host, and must not read `/status`. Cross-site requests other than GET and HEAD are refused,
 * so nothing added here later can be triggered from a browser.
 */
export function refusal(
  req: { method?: string | undefined; headers: http.IncomingHttpHeaders },
  port: number,
  page?: Pick<RigPage, "checkToken">,
): { status: number; message: string } | undefined {
  const host = (req.headers.host ?? "").toLowerCase();
  const names = ["127.0.0.1", "localhost", "[::1]"];
  if (!names.some((n) => host === n || host === `${n}:${port}`))
    return {
      status: 421,
      message: `the status server answers only loopback Host values (127.0.0.1:${port}, localhost:${port}, [::1]:${port}), not ${JSON.stringify(host.slice(0, 100))}`,
    };
  const method = req.method ?? "GET";
  if (method === "GET" || method === "HEAD") return undefined;
  const crossSite =
    (req.headers.origin !== undefined && req.headers.origin !== `http://${host}`) ||
    ["cross-site", "same-site"].includes(String(req.headers["sec-fetch-site"]));
  if (crossSite) return { status: 403, message: `cross-site ${method} requests are refused` };
  // The rig's own page sends its Origin; it must also hold the token only its shell carries.
  if (req.headers.origin !== undefined && !page?.checkToken(req.headers[CSRF_HEADER]))
    return {
      status: 403,
      message: `${method} from a page needs the rig page's ${CSRF_HEADER} token`,
    };
  // A browser sends a cross-origin JSON POST only after a preflight this server never answers.
  if (method === "POST" && !/^application\/json\b/i.test(req.headers["content-type"] ?? ""))
    return { status: 415, message: "POST bodies must be application/json" };
  return undefined;
}

const POSTS = new Set(["/pause", "/resume"]);
const SHARE_POSTS = new Set(["/share", "/unshare"]);
/** Longest model id or service name `/share` takes. */
const MAX_SHARE_NAME = 256;

/**
 * What a `/share` or `/unshare` body asks: `{"model": ID}` plus, for `/share`, `"access"`:
 * `"club"` (the default), `"private"`, member names as a list or `"bob,carol"`.
 */
function shareRequest(
  path: string,
  body: Record<string, unknown> | undefined,
): { name: string; access: Access } | { problem: string } {
  const name = body?.model;
  if (typeof name !== "string" || name === "" || name.length > MAX_SHARE_NAME)
    return {
      problem: `the body must be a JSON object naming a model or service of at most ${MAX_SHARE_NAME} characters, e.g. {"model": "qwen3-8b"}`,
    };
  if (path === "/unshare") return { name, access: "private" };
  const raw = body?.access ?? "club";
  const text = Array.isArray(raw) && raw.every((m) => typeof m === "string") ? raw.join(",") : raw;
  if (typeof text !== "string") return { problem: '"access" is "club", "private" or member names' };
  const parsed = parseAccess(text);
  return "problem" in parsed ? parsed : { name, access: parsed.access };
}

/**
 * Starts the server on `127.0.0.1:port` (0 picks a free port). Resolves with null, after a
 * warning that says how to fix it, when the port is taken: the daemon runs on without it.
 * @example
 * const server = await startStatusServer(daemon, 8790, log);
 */
export async function startStatusServer(
  source: StatusSource,
  port: number,
  log: Logger,
): Promise<http.Server | null> {
  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://status").pathname;
    const method = req.method ?? "GET";
    const reply = (status: number, body: string, type = "application/json"): void => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" }).end(body);
    };
    const fail = (status: number, message: string, type = "invalid_request_error"): void =>
      reply(status, JSON.stringify({ error: { message, type } }));
    /** A control POST: 405 to another method, else `then` with its JSON object (or undefined). */
    const posted = (then: (body: Record<string, unknown> | undefined) => void): void => {
      if (method !== "POST") {
        res.setHeader("allow", "POST");
        return fail(405, `${path} takes POST, not ${method}`);
      }
      // A client that hangs up mid-body rejects the read: drop the answer, keep the daemon up.
      readJson(req).then(then, () => res.destroy());
    };
    const refused = refusal(req, (server.address() as AddressInfo).port, source.page);
    const engines = source.engineControl;
    const enginePath = ENGINE_PATH.exec(path);
    if (refused) fail(refused.status, refused.message);
    else if (engines && (path === "/engines" || enginePath)) {
      const [, name = "", action = "list"] = enginePath ?? [];
      const verb = action === "start" || action === "stop" ? "POST" : "GET";
      if (method !== verb && !(verb === "GET" && method === "HEAD")) {
        res.setHeader("allow", verb === "GET" ? "GET, HEAD" : "POST");
        return fail(405, `${path} takes ${verb}, not ${method}`);
      }
      const unknown = (): void =>
        fail(
          404,
          `no managed engine ${JSON.stringify(name)}; \`club-provider engines\` lists them`,
          "not_found_error",
        );
      if (action === "list") return reply(200, JSON.stringify({ engines: engines.list() }));
      if (action === "logs") {
        const lines = engines.logs(name);
        return lines ? reply(200, JSON.stringify({ name, lines })) : unknown();
      }
      req.resume();
      if (action === "start") {
        const view = engines.start(name);
        return view ? reply(202, JSON.stringify({ engine: view })) : unknown();
      }
      void engines
        .stop(name)
        .then((view) => (view ? reply(200, JSON.stringify({ engine: view })) : unknown()));
    } else if (POSTS.has(path) && source.pausing) {
      const pausing = source.pausing;
      posted((body) => {
        const reason = body?.reason;
        if (!body || (reason !== undefined && typeof reason !== "string"))
          return fail(400, 'the body must be a JSON object, e.g. {"reason": "gaming tonight"}');
        const state = path === "/pause" ? pausing.pause(reason) : pausing.resume();
        reply(200, JSON.stringify(state));
      });
    } else if (SHARE_POSTS.has(path) && source.sharingControl) {
      const sharing = source.sharingControl;
      posted((body) => {
        const asked = shareRequest(path, body);
        if ("problem" in asked) return fail(400, asked.problem);
        const state = sharing.set(asked.name, asked.access);
        if (state === undefined)
          return fail(
            404,
            `this rig serves no model or service ${JSON.stringify(asked.name)}; \`club-provider models\` lists them`,
            "not_found_error",
          );
        reply(200, JSON.stringify(state));
      });
    } else if (method !== "GET" && method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      fail(405, `${path} takes GET and HEAD, not ${method}`);
    } else if (path === "/healthz") reply(200, "ok\n", "text/plain");
    else if (path === "/ready")
      reply(
        source.ready() ? 200 : 503,
        source.ready() ? "ready\n" : "no tunnel is up\n",
        "text/plain",
      );
    else if (path === "/status") reply(200, JSON.stringify(source.status(), null, 2));
    else if (path === "/metrics" && source.metrics)
      reply(200, source.metrics.render(), METRICS_CONTENT_TYPE);
    else if (source.page?.handle(path, req, res)) return;
    else
      fail(
        404,
        `no status endpoint ${path}; try /healthz, /ready, /status or /metrics${source.page ? ", or open / in a browser" : ""}`,
        "not_found_error",
      );
  });
  return new Promise((resolve) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      log.warn(
        `status server not started: 127.0.0.1:${port} ${err.code === "EADDRINUSE" ? "is in use (another club-provider?)" : err.message}; set --status-port to another port`,
      );
      resolve(null);
    });
    server.listen(port, "127.0.0.1", () => {
      server.unref();
      resolve(server);
    });
  });
}

/**
 * Sends `POST path` with a JSON body to a running daemon's status server; null when none
 * answers on that port, else its status and parsed answer.
 */
export async function postStatus(
  port: number,
  path: string,
  body: Record<string, unknown>,
  timeoutMs = 3000,
): Promise<{ status: number; body: unknown } | null> {
  let res: Response;
  try {
    res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch {
    return null;
  }
  const text = await res.text();
  try {
    return { status: res.status, body: JSON.parse(text) as unknown };
  } catch {
    return { status: res.status, body: text };
  }
}

/** Reads a running daemon's `/status`, or null when none answers on that port. */
export async function fetchStatus(port: number, timeoutMs = 1000): Promise<unknown> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status`, {
      signal: AbortSignal.timeout(timeoutMs),
    });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}
