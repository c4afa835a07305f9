/** Why a managed engine cannot take a request now; the gateway answers 503 with `Retry-After`. */
import { ClubError } from "../errors.ts";

export class EngineUnavailable extends ClubError {
  /** Seconds after which trying again may succeed. */
  readonly retryAfter: number;
  constructor(code: string, message: string, retryAfter: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.retryAfter = Math.max(1, Math.ceil(retryAfter));
  }
}
