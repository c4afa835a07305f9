/**
 * The slice of a request and response the gateway needs, satisfied both by `node:http`
 * (a local listener) and by HTTP/2's compatibility API (the tunnel).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { constants, type Http2Stream } from "node:http2";
import type { Readable, Writable } from "node:stream";

export interface GatewayRequest extends Readable {
  method?: string | undefined;
  url?: string | undefined;
  headers: IncomingHttpHeaders;
}

export interface GatewayResponse extends Writable {
  statusCode: number;
  readonly headersSent: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
}

export function sendJson(
  res: GatewayResponse,
  status: number,
  value: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

/** Reads a whole body up to `limit` bytes; resolves null when it is larger. */
export function readLimited(req: Readable, limit: number): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.off("data", onData);
        req.resume();
        resolve(null);
      } else chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(size > limit ? null : Buffer.concat(chunks, size)));
    req.on("error", reject);
  });
}

/**
 * For an answer sent before the request body was read to its end: the rest is read and thrown
 * away, and an HTTP/2 stream is reset with NO_ERROR once the answer is out (RFC 9113 §8.1), so
 * the sender stops. Without the reset the stream stays half open while the relay sends on.
 */
export function dropBody(req: GatewayRequest): void {
  req.resume();
  const stream = (req as { stream?: Http2Stream }).stream;
  if (typeof stream?.close !== "function") return;
  // The stream's own `finish` (the answer is written, END_STREAM included): the compatibility
  // response says `finish` only once the stream closes, which here it would not.
  stream.once("finish", () => {
    if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
  });
}
