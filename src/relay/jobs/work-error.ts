/** A refusal of the long-running work API, with the HTTP status and envelope type to answer. */
import { ClubError } from "../../errors.ts";
import type { ErrorType } from "../../protocol/index.ts";

/** Answered by `work.ts` as the club's error envelope with `status` and `type`. */
export class WorkError extends ClubError {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    message: string,
  ) {
    super(type, message);
  }
}

/** 404 for a job, batch or run the member does not have. */
export function notFound(what: string, id: string): WorkError {
  return new WorkError(404, "not_found_error", `no ${what} ${JSON.stringify(id)}`);
}

/** 409 for an operation the current state does not allow. */
export function conflict(message: string): WorkError {
  return new WorkError(409, "invalid_request_error", message);
}
