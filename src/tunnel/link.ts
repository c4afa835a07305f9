/**
 * The daemon's end of one tunnel connection under either protocol, as `TunnelClient` sees it:
 * the client keeps the state (hello, welcome, heartbeats, backoff), a link only carries.
 *
 * Events, each protocol alike:
 * - `open`: the relay accepted the connection; control messages may be sent;
 * - `unexpected` (status): the relay answered the connect request with this HTTP status;
 * - `control` (text): one control message from the relay;
 * - `alive`: any sign of life from the relay;
 * - `stream` (stream, headers): a request (protocol 2; protocol 1's come from the client's server);
 * - `error` (err): a socket error (the `close` that follows ends the connection);
 * - `close` (code, reason): the connection is gone; emitted once.
 */
import type { EventEmitter } from "node:events";

export interface TunnelLink extends EventEmitter {
  readonly protocol: 1 | 2;
  /** Whether control messages can be sent now. */
  readonly open: boolean;
  send(text: string): void;
  /** Asks the relay for a sign of life. */
  ping(): void;
  /** Tells the relay `code` and `reason`, then cuts the connection within 1 s. */
  close(code: number, reason: string): void;
  /** Cuts the connection now. */
  terminate(): void;
}
