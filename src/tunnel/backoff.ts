/**
 * Reconnect delays: exponential with full jitter (a uniform pick in [0, cap]), so a relay
 * restart is not met by every provider at the same instant. The step resets once a
 * connection has been stable for `stableMs`.
 */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  stableMs?: number;
  random?: () => number;
}

export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly stableMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.stableMs = options.stableMs ?? 60_000;
    this.#random = options.random ?? Math.random;
  }

  /** The next delay, in milliseconds; each call raises the ceiling for the one after. */
  next(): number {
    const cap = Math.min(this.maxMs, this.baseMs * 2 ** this.#attempt);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.round(this.#random() * cap);
  }

  /** The connection stayed up for `connectedMs`: start again from the smallest step if stable. */
  connectionEnded(connectedMs: number): void {
    if (connectedMs >= this.stableMs) this.#attempt = 0;
  }

  reset(): void {
    this.#attempt = 0;
  }

  get attempt(): number {
    return this.#attempt;
  }
}
