/** Reading request bodies with a size limit. */
import type { IncomingMessage } from "node:http";
import { ClubError } from "../errors.ts";

/** What went wrong with a body: too large, not JSON, cut by the client, or over a bound. */
export type BodyErrorCode = "request_too_large" | "invalid_json" | "body_aborted" | "uploads_full";

/** A request body the relay refuses, with the HTTP status to answer. */
export class BodyError extends ClubError {
  declare readonly code: BodyErrorCode;
  constructor(
    code: BodyErrorCode,
    message: string,
    readonly status: number,
  ) {
    super(code, message);
  }
}

/**
 * The JSON body limit unless told otherwise: a chat with a few inline images. Media uploads are
 * multipart and streamed to the provider, never buffered.
 */
export const DEFAULT_MAX_JSON_BYTES = 16 * 1024 * 1024;

/** What the bytes a request's body holds in memory are charged to (`uploads.ts`). */
export interface Meter {
  /** Counts `bytes` more held; throws a `BodyError` (429 or 503) when a bound would pass. */
  hold(bytes: number): void;
  /** Lets go of everything this request held. */
  release(): void;
}

const meters = new WeakMap<IncomingMessage, Meter>();

/** Charges what `readBody` buffers of `req` to `meter` from now on. */
export function attachMeter(req: IncomingMessage, meter: Meter): void {
  meters.set(req, meter);
}

/**
 * The whole body, or a BodyError once it passes `limit` bytes (the rest is not read) or its
 * meter's bounds. What it buffers is charged to the request's meter until it settles.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const meter = meters.get(req);
  return new Promise<Buffer>((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) {
      reject(new BodyError("request_too_large", `request body is larger than ${limit} bytes`, 413));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (err: BodyError): void => {
      req.removeAllListeners("data");
      req.resume();
      reject(err);
    };
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        stop(new BodyError("request_too_large", `request body is larger than ${limit} bytes`, 413));
        return;
      }
      try {
        meter?.hold(chunk.length);
      } catch (err) {
        stop(err as BodyError);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks, size)));
    req.on("error", () =>
      reject(new BodyError("body_aborted", "the client aborted the upload", 400)),
    );
    req.on("aborted", () =>
      reject(new BodyError("body_aborted", "the client aborted the upload", 400)),
    );
  }).finally(() => meter?.release());
}

/** A JSON object body, or a BodyError that says what is wrong with it. */
export function parseJsonObject(buf: Buffer): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(buf.toString("utf8"));
  } catch (err) {
    throw new BodyError(
      "invalid_json",
      `request body is not valid JSON: ${(err as Error).message}`,
      400,
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value))
    throw new BodyError("invalid_json", "request body must be a JSON object", 400);
  return value as Record<string, unknown>;
}
