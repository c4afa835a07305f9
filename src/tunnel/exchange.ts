/**
 * One stream the relay opened, as the request and the response a handler takes: the HTTP/2
 * stream itself, with the few members of `node:http`'s request and response that the gateway
 * uses (`method`, `url`, `headers`, `statusCode`, `writeHead`).
 *
 * Not Node's HTTP/2 compatibility layer, for two reasons. It answers with `waitForTrailers`, so
 * END_STREAM leaves in a frame of its own two event-loop turns after the body: one more
 * WebSocket message per request, each a write here and a wake-up and a read at the relay. On
 * the raw stream a small answer's HEADERS, DATA and END_STREAM leave in one message. And it
 * makes two more objects per request, with their own listeners on the stream.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";

/** A relay's stream as the handler sees it: its request (readable) and its response (writable). */
export interface TunnelExchange extends ServerHttp2Stream {
  method: string;
  url: string;
  /** The request's headers, pseudo-headers (`:method`, `:path`) included, as Node gives them. */
  headers: IncomingHttpHeaders;
  /** The status sent, 200 until `writeHead`. */
  statusCode: number;
  /** This stream, under the name `Http2ServerRequest` gives it (`gateway/http.ts` `dropBody`). */
  stream: ServerHttp2Stream;
  /** Sends the response headers now; a no-op once they are sent or the stream is gone. */
  writeHead(status: number, headers?: OutgoingHttpHeaders): this;
}

/** Headers HTTP/2 forbids (RFC 9113 §8.2.2); an engine's HTTP/1 answer may carry them. */
const CONNECTION_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
  "http2-settings",
]);

function writeHead(this: TunnelExchange, status: number, headers: OutgoingHttpHeaders = {}) {
  // Like `node:http`, where a response whose consumer left takes writes and drops them.
  if (this.headersSent || this.destroyed || this.closed) return this;
  this.statusCode = status;
  const out: OutgoingHttpHeaders = { ":status": status };
  for (const name in headers) {
    const value = headers[name];
    const lower = name.toLowerCase();
    if (value === undefined || lower.startsWith(":") || CONNECTION_HEADERS.has(lower)) continue;
    if (lower === "te" && value !== "trailers") continue;
    out[lower] = value;
  }
  this.respond(out);
  return this;
}

/** The stream, given the request and response members; the same object is both. */
export function exchange(stream: ServerHttp2Stream, headers: IncomingHttpHeaders): TunnelExchange {
  // The members are added to the stream itself: a wrapper would be one more stream per request.
  return Object.assign(stream, {
    method: headers[":method"] ?? "GET",
    url: headers[":path"] ?? "/",
    headers,
    statusCode: 200,
    stream,
    writeHead,
  });
}
