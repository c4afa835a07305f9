/**
 * One budget for the request bodies the gateway holds in memory at once, across every stream of
 * every tunnel: a relay that opens many streams of large JSON bodies gets 503s, not the rig's RAM.
 */

/** Default total of buffered request bodies: 256 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;

/** Bytes held in memory by requests in progress, against a fixed total. */
export class BodyBudget {
  #used = 0;
  constructor(readonly limit: number = DEFAULT_MAX_BUFFERED_BYTES) {}

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Takes `bytes` from the budget; false, taking nothing, when they do not fit. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  /** Gives back bytes taken earlier. */
  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}
