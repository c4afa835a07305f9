/**
 * Reading request bodies with a cap, charged to a meter and refused with an `HttpError`; an
 * engine's reply is read with `readCapped` (`read-capped.ts`).
 */
import { constants, type Http2Stream } from "node:http2";
import type { Readable } from "node:stream";
import { badRequest, tooLarge } from "./error.ts";
import type { HttpRequest } from "./respond.ts";

/**
 * What the bytes a request's body holds in memory are charged to (the relay's `uploads.ts`, the
 * daemon's body budget). Its owner lets them go when the request's response closes: the body
 * lives that long.
 */
export interface Meter {
  /** Counts `bytes` more held; throws an `HttpError` (429 or 503) when a bound would pass. */
  hold(bytes: number): void;
}

/**
 * Where a request keeps its meter: a property of its own. A WeakMap entry per request cost 0.8 %
 * of the daemon's busy CPU on small requests (the set alone, in a profile), and an ephemeron
 * for each GC to trace.
 */
const METER = Symbol("club.meter");
type Metered = Readable & { [METER]?: Meter };

/** Charges what {@link readBody} buffers of `req` to `meter` from now on. */
export function attachMeter(req: Readable, meter: Meter): void {
  (req as Metered)[METER] = meter;
}

/** The meter `req`'s buffered bytes are charged to, if it has one (`attachMeter`). */
export function meterOf(req: Readable): Meter | undefined {
  return (req as Metered)[METER];
}

/**
 * The whole body, or an `HttpError` once it passes `limit` bytes (413; the rest is not read
 * but drained) or its meter's bounds, or when the client aborts (400). What it buffers is
 * charged to the request's meter, if it has one (`attachMeter`).
 * @example
 * const json = parseJsonObject(await readBody(req, 16 * 1024 * 1024));
 */
export function readBody(req: HttpRequest, limit: number): Promise<Buffer> {
  const meter = meterOf(req);
  return new Promise<Buffer>((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) {
      reject(tooLarge(limit));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: Error): void => {
      req.removeAllListeners("data");
      req.resume();
      reject(err);
    };
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop(tooLarge(limit));
        return;
      }
      try {
        meter?.hold(chunk.length);
      } catch (err) {
        stop(err as Error);
        return;
      }
      chunks.push(chunk);
    });
    const aborted = (): void => reject(badRequest("the client aborted the upload"));
    req.on("end", () => resolve(Buffer.concat(chunks, size)));
    req.on("error", aborted);
    req.on("aborted", aborted);
  });
}

/** A JSON object body, or a 400 `HttpError` that says what is wrong with it. */
export function parseJsonObject(buf: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString("utf8"));
  } catch (err) {
    throw badRequest(`request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw badRequest("request body must be a JSON object");
  return value as Record<string, unknown>;
}

/**
 * For an answer sent before the request body was read to its end: the rest is read and thrown
 * away, and an HTTP/2 stream is reset with NO_ERROR once the answer is out (RFC 9113 §8.1), so
 * the sender stops. Without the reset the stream stays half open while the relay sends on.
 */
export function dropBody(req: Readable): void {
  req.resume();
  const stream = (req as { stream?: Http2Stream }).stream;
  if (typeof stream?.close !== "function") return;
  // The stream's own `finish` (the answer is written, END_STREAM included): the compatibility
  // response says `finish` only once the stream closes, which here it would not.
  stream.once("finish", () => {
    if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR);
  });
}
