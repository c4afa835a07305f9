/**
 * Errors with a stable `code`. A `UserError` is the user's to fix: the CLI prints its
 * message (which says how) and exits 1, without a stack.
 */
export class ClubError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A problem the user can fix: bad config, a refused key, a missing engine. */
export class UserError extends ClubError {}

/** Renders an unknown thrown value as one line, following `cause` chains. */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const parts: string[] = [err.message];
  let cause: unknown = err.cause;
  for (let depth = 0; cause instanceof Error && depth < 4; depth++) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (!err.message.includes(cause.message))
      parts.push(code ? `${cause.message} (${code})` : cause.message);
    cause = cause.cause;
  }
  return parts.join(": ");
}

/** The local engine could not be reached or broke off; the gateway answers 502 `upstream_error`. */
export class UpstreamError extends ClubError {}
