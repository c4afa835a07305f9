/** Writing the club's error envelope on a plain HTTP response. */
import type { ServerResponse } from "node:http";
import { envelope, type ErrorType } from "../protocol/index.ts";

export function sendError(
  res: ServerResponse,
  status: number,
  type: ErrorType,
  message: string,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(envelope(type, message));
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}
