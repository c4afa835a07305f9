/**
 * What carries one tunnel at the relay, under either protocol: the HTTP/2 client session the
 * relay sends requests on, a way to send control messages, liveness and close. `ProviderLink`
 * holds one and does not know which protocol it is.
 *
 * - protocol 1 (`ws-carrier.ts`): HTTP/2 inside a WebSocket's binary messages, control
 *   messages in its text messages, WebSocket ping and close codes;
 * - protocol 2 (`h2-carrier.ts`): HTTP/2 on the upgraded socket itself, control messages as
 *   lines on the first stream, HTTP/2 PING, and the close code in GOAWAY.
 */
import type { ClientHttp2Session } from "node:http2";

export interface CarrierEvents {
  /** One control message, as received (not yet parsed). */
  control(data: Buffer): void;
  /** Any sign the peer is alive: a frame, a message, a ping or its answer. */
  alive(): void;
  /** The tunnel is gone, for this reason; called once. */
  closed(reason: string): void;
  /** A socket error (the `closed` that follows says what it ended). */
  error(err: unknown): void;
}

export interface RelayCarrier {
  readonly protocol: 1 | 2;
  readonly session: ClientHttp2Session;
  /** Starts delivering events; called once, by the owner. */
  start(events: CarrierEvents): void;
  send(text: string): void;
  /** Asks the peer for a sign of life (its answer calls `alive`). */
  ping(): void;
  /** Tells the peer `code` and `reason`, then cuts the connection (after 1 s at most). */
  close(code: number, reason: string): void;
  /** Cuts the connection now. */
  terminate(): void;
}
