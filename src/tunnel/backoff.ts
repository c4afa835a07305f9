/**
 * Reconnect delays: exponential with full jitter (a uniform pick in [0, cap]), so a relay
 * restart is not met by every provider at the same instant. For the first `fastWindowMs` of an
 * outage the cap stays at `fastMaxMs`: a relay that restarts in seconds has its providers back
 * within about a second, at the cost of at most two connection attempts a second meanwhile.
 * After that, the cap doubles up to `maxMs`. Both reset once a connection stayed up for
 * `stableMs`, so a relay that accepts and then drops connections gets the slow schedule.
 */
export interface BackoffOptions {
  baseMs?: number;
  maxMs?: number;
  stableMs?: number;
  fastWindowMs?: number;
  fastMaxMs?: number;
  random?: () => number;
  now?: () => number;
}

export class Backoff {
  readonly baseMs: number;
  readonly maxMs: number;
  readonly stableMs: number;
  readonly fastWindowMs: number;
  readonly fastMaxMs: number;
  readonly #random: () => number;
  readonly #now: () => number;
  #attempt = 0;
  /** When the current run of failures began (the first `next` since the last reset). */
  #since: number | null = null;

  constructor(options: BackoffOptions = {}) {
    this.baseMs = options.baseMs ?? 500;
    this.maxMs = options.maxMs ?? 30_000;
    this.stableMs = options.stableMs ?? 60_000;
    this.fastWindowMs = options.fastWindowMs ?? 30_000;
    this.fastMaxMs = options.fastMaxMs ?? 1_000;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
  }

  /** The next delay, in milliseconds; each call raises the ceiling for the one after. */
  next(): number {
    const now = this.#now();
    this.#since ??= now;
    let cap = Math.min(this.maxMs, this.baseMs * 2 ** this.#attempt);
    if (now - this.#since < this.fastWindowMs) cap = Math.min(cap, this.fastMaxMs);
    this.#attempt = Math.min(this.#attempt + 1, 30);
    return Math.round(this.#random() * cap);
  }

  /** The connection stayed up for `connectedMs`: start again from the smallest step if stable. */
  connectionEnded(connectedMs: number): void {
    if (connectedMs >= this.stableMs) this.reset();
  }

  reset(): void {
    this.#attempt = 0;
    this.#since = null;
  }

  get attempt(): number {
    return this.#attempt;
  }
}
