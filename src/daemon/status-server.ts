/**
 * The daemon's status server, on loopback only: `/healthz`, `/ready` (200 while a tunnel is
 * up) and `/status` (JSON, what `club-provider status` and `models` read).
 */
import http from "node:http";
import type { Logger } from "../log.ts";

export interface StatusSource {
  ready(): boolean;
  status(): unknown;
}

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
    if (path === "/healthz") reply(200, "ok\n", "text/plain");
    else if (path === "/ready")
      reply(
        source.ready() ? 200 : 503,
        source.ready() ? "ready\n" : "no tunnel is up\n",
        "text/plain",
      );
    else if (path === "/status") reply(200, JSON.stringify(source.status(), null, 2));
    else
      reply(
        404,
        JSON.stringify({
          error: { message: `no status endpoint ${path}`, type: "not_found_error" },
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
