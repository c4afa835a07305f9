/**
 * Anthropic's dialect on `/v1/messages`: its clients send the key as `x-api-key` and read errors
 * as `{"type":"error","error":{"type","message"}}`. Every error answer of that endpoint, whoever
 * wrote it (the relay, the daemon, the engine), is rewritten to that shape on its way out.
 */
import type { ServerResponse } from "node:http";

/** Paths whose errors are given in Anthropic's shape. */
export function speaksAnthropic(path: string): boolean {
  return path === "/v1/messages" || path.startsWith("/v1/messages/");
}

/** The key of an `x-api-key` header (Anthropic's clients), if there is exactly one. */
export function apiKeyHeader(value: string | string[] | undefined): string | undefined {
  const key = typeof value === "string" ? value.trim() : undefined;
  return key === "" ? undefined : key;
}

/** Anthropic's error types, by the club's (or an engine's) type, else by status. */
const TYPES: Record<string, string> = {
  invalid_request_error: "invalid_request_error",
  authentication_error: "authentication_error",
  permission_error: "permission_error",
  not_found_error: "not_found_error",
  no_provider: "not_found_error",
  request_too_large: "request_too_large",
  rate_limit_error: "rate_limit_error",
  overloaded: "overloaded_error",
  overloaded_error: "overloaded_error",
};

function typeFor(status: number, type: unknown): string {
  if (typeof type === "string" && TYPES[type]) return TYPES[type];
  if (status === 400 || status === 422) return "invalid_request_error";
  if (status === 401) return "authentication_error";
  if (status === 403) return "permission_error";
  if (status === 404) return "not_found_error";
  if (status === 413) return "request_too_large";
  if (status === 429) return "rate_limit_error";
  if (status === 503 || status === 529) return "overloaded_error";
  return "api_error";
}

/**
 * An error body (the club's envelope, an engine's, or text) in Anthropic's shape.
 * @example anthropicError(404, '{"error":{"message":"no","type":"no_provider"}}')
 * // {"type":"error","error":{"type":"not_found_error","message":"no"}}
 */
export function anthropicError(status: number, text: string): string {
  let message = text.slice(0, 2000) || `error ${status}`;
  let type: unknown;
  try {
    const body = JSON.parse(text) as {
      type?: unknown;
      error?: { message?: unknown; type?: unknown } | string;
      message?: unknown;
    };
    if (body.type === "error") return text;
    if (typeof body.error === "string") message = body.error;
    else if (typeof body.error?.message === "string") {
      message = body.error.message;
      type = body.error.type;
    } else if (typeof body.message === "string") message = body.message;
  } catch {
    // not JSON: the text is the message
  }
  return JSON.stringify({ type: "error", error: { type: typeFor(status, type), message } });
}

/** An SSE event of the club's stream-ending error (`data: {"error":…}`), as Anthropic's. */
function sseError(chunk: string): string | undefined {
  const m = /^data: (\{"error":.*\})\n\n$/s.exec(chunk);
  if (!m?.[1]) return undefined;
  return `event: error\ndata: ${anthropicError(500, m[1])}\n\n`;
}

type Chunk = string | Buffer | Uint8Array;

/**
 * Makes `res` answer errors in Anthropic's shape: an answer of status 400 or more has its body
 * gathered and rewritten (with a new length); an SSE stream's final club error event becomes an
 * Anthropic `error` event. Successful answers pass untouched.
 */
export function anthropicErrors(res: ServerResponse): void {
  const writeHead = res.writeHead.bind(res) as (s: number, h?: unknown) => ServerResponse;
  const write = res.write.bind(res) as (c: Chunk, ...rest: unknown[]) => boolean;
  const end = res.end.bind(res) as (c?: unknown, ...rest: unknown[]) => ServerResponse;
  let held: { status: number; headers: Record<string, unknown>; chunks: Buffer[] } | undefined;
  const toBuffer = (c: Chunk): Buffer => (typeof c === "string" ? Buffer.from(c) : Buffer.from(c));

  res.writeHead = (status: number, ...args: unknown[]) => {
    const headers = args.find((a) => typeof a === "object" && a !== null) ?? {};
    if (status < 400) return writeHead(status, headers);
    held = { status, headers: headers as Record<string, unknown>, chunks: [] };
    return res;
  };
  const flushHeaders = res.flushHeaders.bind(res);
  res.flushHeaders = () => {
    if (!held) flushHeaders();
  };
  res.write = ((chunk: Chunk, ...rest: unknown[]) => {
    if (!held) return write(chunk, ...rest);
    held.chunks.push(toBuffer(chunk));
    return true;
  }) as typeof res.write;
  res.end = ((chunk?: unknown, ...rest: unknown[]) => {
    const data = typeof chunk === "function" || chunk === undefined ? undefined : (chunk as Chunk);
    if (!held) {
      const text = typeof data === "string" ? sseError(data) : undefined;
      return text === undefined ? end(chunk, ...rest) : end(text);
    }
    if (data !== undefined) held.chunks.push(toBuffer(data));
    const body = anthropicError(held.status, Buffer.concat(held.chunks).toString("utf8"));
    const headers: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(held.headers))
      if (name.toLowerCase() !== "content-length" && name.toLowerCase() !== "content-type")
        headers[name] = value;
    writeHead(held.status, {
      ...headers,
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(body)),
    });
    held = undefined;
    return end(body);
  }) as typeof res.end;
}
