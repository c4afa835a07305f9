/** Reading request bodies with a size limit. */
import type { IncomingMessage } from "node:http";
import { ClubError } from "../errors.ts";

export class BodyError extends ClubError {
  constructor(
    code: "request_too_large" | "invalid_json" | "body_aborted",
    message: string,
    readonly status: number,
  ) {
    super(code, message);
  }
}

/** The whole body, or a BodyError once it passes `limit` bytes (the rest is not read). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (declared > limit) {
      reject(new BodyError("request_too_large", `request body is larger than ${limit} bytes`, 413));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        reject(
          new BodyError("request_too_large", `request body is larger than ${limit} bytes`, 413),
        );
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
  });
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
