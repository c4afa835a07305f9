/**
 * Connections open at once, per source address and in all. An idle connection costs the relay
 * a file descriptor and 2-3 KiB, and may sit `--headers-timeout` before it sends a request, so
 * without a bound one stranger's machine could hold every descriptor the relay has, and
 * everyone else's connections would be refused. A connection beyond either bound is closed at
 * once, before it is read (as Node's own `maxConnections` does for the total). Behind a reverse
 * proxy (`trustProxy`) every connection comes from the proxy, so only the total holds; the
 * proxy bounds its own clients (nginx's `limit_conn`).
 */
import type { Server, Socket } from "node:net";
import { sourceAddress } from "./auth-throttle.ts";

export interface ConnectionLimits {
  /** Connections one source address (IPv6: one /64) may hold open at once; 0: no bound. */
  perAddress: number;
  /** Connections open at once in all; 0: no bound. */
  total: number;
}

/**
 * A client holds a connection per request in flight (the relay speaks HTTP/1.1), so 1024 is
 * that many requests at once from one machine; idle, they cost the relay 2-3 MiB.
 */
export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { perAddress: 1024, total: 10_000 };

/**
 * Holds `server` to `limits`; returns what is open now by source, for tests and metrics.
 * @example
 * limitConnections(server, { perAddress: 256, total: 10_000 }, { trustProxy: false });
 */
export function limitConnections(
  server: Server,
  limits: ConnectionLimits,
  options: { trustProxy: boolean; onRefused?: (source: string) => void },
): ReadonlyMap<string, number> {
  const open = new Map<string, number>();
  if (limits.total > 0) server.maxConnections = limits.total;
  if (limits.perAddress === 0 || options.trustProxy) return open;
  // Before the HTTP server's own listener: a refused socket is never read.
  server.prependListener("connection", (socket: Socket) => {
    const source = sourceAddress(socket.remoteAddress ?? "");
    const now = open.get(source) ?? 0;
    if (now >= limits.perAddress) {
      options.onRefused?.(source);
      socket.destroy();
      return;
    }
    open.set(source, now + 1);
    socket.once("close", () => {
      const left = (open.get(source) ?? 1) - 1;
      if (left > 0) open.set(source, left);
      else open.delete(source);
    });
  });
  return open;
}
