/**
 * The one error type of the HTTP edge: a refusal that knows its status, modelled on hono's
 * `HTTPException(status, { cause })`. Whatever part refuses a request (a body too large, a
 * record not found, a form an adapter cannot read) throws one; {@link answerError} writes it.
 */
import { ClubError } from "../errors.ts";
import type { ErrorEnvelope, ErrorType } from "../protocol/index.ts";

/** What an {@link HttpError} carries beyond its status, type and message. */
export interface HttpErrorOptions {
  cause?: unknown;
  /** The error's stable `code` (default: its `type`). */
  code?: string;
  /** Show `code` in the envelope as `error.code`, for clients that key on it (`database_unavailable`). */
  expose?: boolean;
  /** Headers sent with the answer (`retry-after`). */
  headers?: Readonly<Record<string, string>>;
}

/**
 * A request refused with an HTTP status and the club's envelope type.
 * @example
 * throw new HttpError(404, "not_found_error", `no job ${JSON.stringify(id)}`);
 */
export class HttpError extends ClubError {
  /** The envelope's `error.code`, when the refusal has one clients key on. */
  readonly publicCode: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
    options: HttpErrorOptions = {},
  ) {
    super(options.code ?? type, message, { cause: options.cause });
    this.publicCode = options.expose ? options.code : undefined;
    this.headers = options.headers ?? {};
  }

  /** The club's envelope for this refusal. */
  get envelope(): ErrorEnvelope {
    const error: ErrorEnvelope["error"] = { message: this.message, type: this.type };
    if (this.publicCode !== undefined) error.code = this.publicCode;
    return { error };
  }
}

/** 400 `invalid_request_error`: the commonest refusal. */
export function badRequest(message: string, options?: HttpErrorOptions): HttpError {
  return new HttpError(400, "invalid_request_error", message, options);
}

/** 413 `request_too_large` for a body past `limit` bytes. */
export function tooLarge(limit: number, what = "request body"): HttpError {
  return new HttpError(413, "request_too_large", `${what} is larger than ${limit} bytes`);
}

/**
 * The answer for a method and path that no route serves: 405 when the path is one of `known`
 * (another method serves it), 404 otherwise. With `allowed` (the methods that do serve the
 * path), the 405 names them and carries them in an `Allow` header.
 */
export function unknownEndpoint(
  method: string,
  path: string,
  known: ReadonlySet<string>,
  allowed: readonly string[] = [],
): HttpError {
  if (!known.has(path))
    return new HttpError(404, "not_found_error", `unknown endpoint ${method} ${path}`);
  const use = allowed.length > 0 ? `; use ${allowed.join(" or ")}` : "";
  return new HttpError(
    405,
    "invalid_request_error",
    `${method} is not allowed on ${path}${use}`,
    allowed.length > 0 ? { headers: { allow: allowed.join(", ") } } : {},
  );
}
