/** Headers the relay adds to every request it sends through a tunnel. */
export const HEADER_MODEL = "x-club-model";
export const HEADER_REQUEST_ID = "x-club-request-id";
/**
 * The member whose key made the request (the key decides, never the request). The daemon
 * refuses a member its sharing settings do not allow (403).
 */
export const HEADER_MEMBER = "x-club-member";

/** WebSocket subprotocol of tunnel protocol 1 (HTTP/2 inside a WebSocket). */
export const TUNNEL_SUBPROTOCOL = "club-tunnel.1";
/**
 * The `Upgrade` token of tunnel protocol 2: after `101 Switching Protocols` the socket carries
 * HTTP/2 itself, no WebSocket (docs/protocol.md §1).
 */
export const TUNNEL_UPGRADE_2 = "club-tunnel.2";
/** Tunnel protocol versions this code speaks, newest last. */
export const TUNNEL_PROTOCOLS = [1, 2] as const;
export type TunnelProtocol = (typeof TUNNEL_PROTOCOLS)[number];
/** The newest tunnel protocol: what a daemon asks for first. */
export const TUNNEL_PROTOCOL = 2;
/**
 * Version of the control messages (`v`). Both tunnel protocols carry the same messages, so it
 * stays 1: what changed in protocol 2 is how they and the HTTP/2 frames travel.
 */
export const PROTOCOL_VERSION = 1;
export const CONNECT_PATH = "/v1/providers/connect";
/**
 * On protocol 2, the path of the stream the relay opens first: its request and response bodies
 * carry the control messages, one JSON object per line. Never a public API path.
 */
export const CONTROL_PATH = "/.club/control";

/** Close codes the tunnel uses beyond RFC 6455's (see docs/protocol.md). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  protocolError: 1002,
  policy: 1008,
  tooBig: 1009,
  /** A control message was malformed or arrived out of order. */
  badMessage: 4400,
  /** The relay no longer accepts this key (revoked while connected). */
  unauthorized: 4401,
  /** Another connection took over this provider name and connection slot. */
  replaced: 4409,
  /** The peer speaks a protocol version we do not. */
  unsupportedVersion: 4426,
  /** No heartbeat or pong for two intervals. */
  timeout: 4408,
  /** The peer sent control messages faster than the receiver allows. */
  tooManyMessages: 4429,
  /** The receiver failed while handling a message (a bug of ours); reconnecting may help. */
  internalError: 1011,
} as const;

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus ones HTTP/2 forbids; never forwarded. */
export const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);
