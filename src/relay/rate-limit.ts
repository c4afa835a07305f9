/**
 * Per-key request rate limits: a token bucket per key digest, refilled continuously. A key
 * over its rate gets 429 with `Retry-After`; buckets of idle keys are dropped.
 */
export interface RateLimitOptions {
  /** Sustained requests per second per key (default 50). */
  perSecond?: number;
  /** Requests a key may make at once after being idle (default 2 × perSecond). */
  burst?: number;
  /** Most buckets kept; past it the oldest go first, so a flood of new keys cannot grow it. */
  maxKeys?: number;
  now?: () => number;
}

/** What the API asks of a per-key limiter: one process's buckets, or the club's (cluster/rate.ts). */
export interface KeyLimiter {
  /** Takes one request from `key`'s bucket: 0 when allowed, else the seconds to wait. */
  take(key: string): number | Promise<number>;
  /** Stops its timers, where it has any. */
  close?(): void;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter implements KeyLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly #now: () => number;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(options: RateLimitOptions = {}) {
    this.perSecond = options.perSecond ?? 50;
    this.burst = options.burst ?? 2 * this.perSecond;
    this.#now = options.now ?? Date.now;
    this.#maxKeys = options.maxKeys ?? 100_000;
  }

  /** The seconds `key` must wait before its next request, without taking one (0: none). */
  wait(key: string): number {
    const bucket = this.#buckets.get(key);
    if (!bucket) return 0;
    const tokens = Math.min(
      this.burst,
      bucket.tokens + ((this.#now() - bucket.at) / 1000) * this.perSecond,
    );
    return tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - tokens) / this.perSecond));
  }

  /** Takes one request from `key`'s bucket: 0 when allowed, else the seconds to wait. */
  take(key: string): number {
    const now = this.#now();
    const bucket = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(
      this.burst,
      bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond,
    );
    bucket.at = now;
    this.#buckets.set(key, bucket);
    if (this.#buckets.size > Math.min(10_000, this.#maxKeys)) this.#sweep(now);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / this.perSecond));
  }

  #sweep(now: number): void {
    for (const [key, b] of this.#buckets)
      if (now - b.at > (this.burst / this.perSecond) * 1000) this.#buckets.delete(key);
    for (const key of this.#buckets.keys()) {
      if (this.#buckets.size <= this.#maxKeys) break;
      this.#buckets.delete(key);
    }
  }
}
