/**
 * Writing answers: JSON, the club's error envelope, and any thrown error mapped to one. Works on
 * `node:http` responses and on HTTP/2's compatibility API (the tunnel) alike.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Readable, Writable } from "node:stream";
import { envelope, type ErrorType } from "../protocol/index.ts";
import { HttpError } from "./error.ts";

/** The slice of a request the edge reads: `node:http` and HTTP/2's compatibility request. */
export interface HttpRequest extends Readable {
  method?: string | undefined;
  url?: string | undefined;
  headers: IncomingHttpHeaders;
}

/** The slice of a response the edge writes: `node:http` and HTTP/2's compatibility response. */
export interface HttpResponse extends Writable {
  statusCode: number;
  readonly headersSent: boolean;
  writeHead(status: number, headers?: OutgoingHttpHeaders): unknown;
}

/**
 * Answers `status` with `value` as JSON. Once an answer has begun it can only be cut: the
 * response is destroyed instead.
 */
export function sendJson(
  res: HttpResponse,
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

/** Answers `status` with the club's error envelope. */
export function sendError(
  res: HttpResponse,
  status: number,
  type: ErrorType,
  message: string,
  headers: OutgoingHttpHeaders = {},
): void {
  sendJson(res, status, envelope(type, message), headers);
}

/**
 * Answers any thrown value in the club's envelope: an {@link HttpError} with its own status,
 * type, code and headers; anything else 500 `server_error` with `fault` (the caller logs it).
 * True when `err` was an `HttpError` (a refusal, not a fault).
 */
export function answerError(res: HttpResponse, err: unknown, fault: string): boolean {
  if (err instanceof HttpError) {
    sendJson(res, err.status, err.envelope, err.headers);
    return true;
  }
  sendError(res, 500, "server_error", fault);
  return false;
}
