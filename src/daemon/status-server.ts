/**
 * The daemon's status server, on loopback only: `/healthz`, `/ready` (200 while a tunnel is
 * up), `/status` (JSON, what `club-provider status` and `models` read) and `/metrics`
 * (Prometheus text).
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Logger } from "../log.ts";
import { METRICS_CONTENT_TYPE } from "./metrics.ts";

/** What the status server reports on; the daemon in production, a stub in tests. */
export interface StatusSource {
  ready(): boolean;
  status(): unknown;
  /** The Prometheus exposition; `/metrics` answers 404 without it. */
  readonly metrics?: { render(): string };
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
    req.headers.origin !== undefined ||
    ["cross-site", "same-site"].includes(String(req.headers["sec-fetch-site"]));
  if (crossSite) return { status: 403, message: `cross-site ${method} requests are refused` };
  return { status: 405, message: `the status server takes GET and HEAD, not ${method}` };
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
    const reply = (status: number, body: string, type = "application/json"): void => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" }).end(body);
    };
    const refused = refusal(req, (server.address() as AddressInfo).port);
    if (refused) {
      const error = { message: refused.message, type: "invalid_request_error" };
      reply(refused.status, JSON.stringify({ error }));
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
    else
      reply(
        404,
        JSON.stringify({
          error: {
            message: `no status endpoint ${path}; try /healthz, /ready, /status or /metrics`,
            type: "not_found_error",
          },
        }),
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
