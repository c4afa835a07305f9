/** The long-running work API's common refusals. */
import { HttpError } from "../../http/error.ts";

/** 404 for a job, batch or run the member does not have. */
export function notFound(what: string, id: string): HttpError {
  return new HttpError(404, "not_found_error", `no ${what} ${JSON.stringify(id)}`);
}

/** 409 for an operation the current state does not allow. */
export function conflict(message: string): HttpError {
  return new HttpError(409, "invalid_request_error", message);
}
