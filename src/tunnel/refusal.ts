/**
 * What a daemon does when the relay answers its connect request with an HTTP status instead
 * of switching protocols (docs/protocol.md §1): stop, fall back to protocol 1, or retry.
 */
import type { TunnelProtocolSetting } from "../config.ts";

export type Refusal =
  /** 401/403: the key was refused; stop. */
  | "key"
  /** Protocol 2 under `auto` got a 4xx a relay of the last release (or a WebSocket-only server) gives. */
  | "fallback"
  /** 426 where no fallback is left: the versions differ; stop. */
  | "version"
  /** Anything else (429, 5xx, 404 on protocol 1): a relay starting or full; retry with backoff. */
  | "retry";

/** The daemon's answer to `status` on a connect request for `protocol` under `setting`. */
export function classifyRefusal(
  status: number,
  protocol: 1 | 2,
  setting: TunnelProtocolSetting,
): Refusal {
  if (status === 401 || status === 403) return "key";
  // A relay of the last release answers protocol 2 with 426 (no WebSocket subprotocol), a
  // WebSocket-only server with 400, a proxy that drops `Upgrade` with the relay's 404; 408 is
  // the link's own: connected, and no answer at all (a proxy holding an upgrade it does not know).
  const only1 = protocol === 2 && status >= 400 && status < 500 && status !== 429;
  if (only1 && setting === "auto") return "fallback";
  if (status === 426) return "version";
  return "retry";
}
