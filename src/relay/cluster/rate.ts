/**
 * Per-key rate limits that hold across relay instances: one token bucket per key in
 * PostgreSQL, refilled by the database's clock. An instance takes tokens from a key's bucket a
 * few at a time (a lease of `batch` tokens, claimed in one `INSERT … ON CONFLICT DO UPDATE`)
 * and spends them locally, so a busy key costs one round trip per `batch` requests rather than
 * one per request. Tokens leave the shared bucket before they are spent, so the club never
 * admits more than the bucket allows however the load balancer spreads a key over instances;
 * what a lease costs is the other way: tokens an instance claimed and did not spend before the
 * lease ran out (`leaseMs`) are lost, at most `batch` per key and instance per lease.
 *
 * While PostgreSQL cannot be reached (or answers slower than `claimTimeoutMs`) each instance
 * falls back to its own bucket of the same rate: a key may then get up to N times its rate over
 * N instances, rather than every request waiting on a database that is down.
 */
import type pg from "pg";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import { migrate } from "../pg/migrate.ts";
import { RateLimiter, type KeyLimiter } from "../rate-limit.ts";

export const RATE_MIGRATIONS = [
  `CREATE TABLE cluster_rate (
     key text PRIMARY KEY,
     tokens double precision NOT NULL,
     granted integer NOT NULL,
     at double precision NOT NULL)`,
  `CREATE INDEX cluster_rate_at ON cluster_rate (at)`,
];

export interface SharedRateOptions {
  /** Sustained requests per second per key, club-wide (default 50). */
  perSecond?: number;
  /** Requests a key may make at once after being idle, club-wide (default 2 × perSecond). */
  burst?: number;
  /** Tokens one claim takes (default a tenth of the burst, at least 1). */
  batch?: number;
  /** Claimed tokens not spent within this many ms are dropped (default 1 000). */
  leaseMs?: number;
  /** A claim slower than this falls back to the local bucket (default 500 ms). */
  claimTimeoutMs?: number;
  /** Most keys with a local lease; past it the oldest go first (default 100 000). */
  maxKeys?: number;
  log: Logger;
}

/** After a claim failed, how long the fallback decides before the database is asked again. */
const DOWN_MS = 2_000;

interface Lease {
  tokens: number;
  until: number;
  /** The claim in flight for this key, shared by the requests that wait on it. */
  claim?: Promise<number | undefined>;
  /** Seconds to wait, from the last claim that found the bucket empty. */
  retry: number;
  retryUntil: number;
}

/**
 * `$1` key, `$2` burst, `$3` batch, `$4` per second. The bucket is refilled to the database's
 * clock (milliseconds since the epoch), up to the burst; up to `batch` whole tokens are granted.
 */
const CLAIM = `
  INSERT INTO cluster_rate AS r (key, tokens, granted, at)
  VALUES ($1, $2::float8 - least($3::int, floor($2::float8)), least($3::int, floor($2::float8)),
          extract(epoch FROM clock_timestamp()) * 1000)
  ON CONFLICT (key) DO UPDATE SET
    granted = least($3::int, floor(least($2::float8,
      r.tokens + greatest(0, extract(epoch FROM clock_timestamp()) * 1000 - r.at) / 1000 * $4::float8))),
    tokens = least($2::float8,
      r.tokens + greatest(0, extract(epoch FROM clock_timestamp()) * 1000 - r.at) / 1000 * $4::float8)
      - least($3::int, floor(least($2::float8,
      r.tokens + greatest(0, extract(epoch FROM clock_timestamp()) * 1000 - r.at) / 1000 * $4::float8))),
    at = greatest(r.at, extract(epoch FROM clock_timestamp()) * 1000)
  RETURNING granted, tokens`;

export class SharedRateLimiter implements KeyLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly batch: number;
  readonly #pool: pg.Pool;
  readonly #leaseMs: number;
  readonly #claimTimeoutMs: number;
  readonly #maxKeys: number;
  readonly #fallback: RateLimiter;
  readonly #leases = new Map<string, Lease>();
  readonly #log: Logger;
  readonly #sweeper: NodeJS.Timeout;
  /** Claims made against the database (for tests and metrics). */
  claims = 0;
  /** Requests decided by the local fallback because the database could not answer. */
  fallbacks = 0;
  #warned = false;
  /** Until then the database is taken as down and the fallback decides without asking it. */
  #downUntil = 0;

  private constructor(pool: pg.Pool, o: SharedRateOptions) {
    this.#pool = pool;
    this.perSecond = o.perSecond ?? 50;
    this.burst = o.burst ?? 2 * this.perSecond;
    this.batch = Math.max(1, Math.floor(o.batch ?? this.burst / 10));
    this.#leaseMs = o.leaseMs ?? 1_000;
    this.#claimTimeoutMs = o.claimTimeoutMs ?? 500;
    this.#maxKeys = o.maxKeys ?? 100_000;
    this.#fallback = new RateLimiter({
      perSecond: this.perSecond,
      burst: this.burst,
      maxKeys: this.#maxKeys,
    });
    this.#log = o.log.child({ component: "rate" });
    // Buckets idle long enough to be full again are the same as no row: drop them.
    this.#sweeper = setInterval(() => void this.#sweep(), 60_000);
    this.#sweeper.unref();
  }

  /** Brings the table up to date, then opens the limiter. */
  static async start(pool: pg.Pool, o: SharedRateOptions): Promise<SharedRateLimiter> {
    await migrate(pool, "rate", RATE_MIGRATIONS);
    return SharedRateLimiter.open(pool, o);
  }

  /** Opens the limiter on a database whose table `start` already made. */
  static open(pool: pg.Pool, o: SharedRateOptions): SharedRateLimiter {
    return new SharedRateLimiter(pool, o);
  }

  /** Keys with a local lease. */
  get size(): number {
    return this.#leases.size;
  }

  /** Takes one request from `key`'s club-wide bucket: 0 when allowed, else seconds to wait. */
  async take(key: string): Promise<number> {
    for (let round = 0; round < 3; round++) {
      const now = Date.now();
      if (this.#downUntil > now) {
        this.fallbacks++;
        return this.#fallback.take(key);
      }
      let lease = this.#leases.get(key);
      if (lease && lease.until <= now) lease.tokens = 0;
      if (lease && lease.tokens >= 1) {
        lease.tokens -= 1;
        return 0;
      }
      if (lease?.claim) {
        await lease.claim;
        continue;
      }
      if (lease && lease.retryUntil > now) return lease.retry;
      if (!lease) {
        lease = { tokens: 0, until: 0, retry: 0, retryUntil: 0 };
        this.#leases.set(key, lease);
        this.#trim();
      }
      const claim = this.#claim(key, lease);
      lease.claim = claim;
      const fell = await claim.finally(() => {
        if (lease.claim === claim) delete lease.claim;
      });
      if (fell !== undefined) return fell;
    }
    return Math.max(1, Math.ceil(1 / this.perSecond));
  }

  /**
   * Claims a lease for `key`. Resolves undefined when the lease was refreshed (tokens, or a
   * retry time), or the fallback's answer when the database could not be asked.
   */
  async #claim(key: string, lease: Lease): Promise<number | undefined> {
    this.claims++;
    let timer: NodeJS.Timeout | undefined;
    try {
      const { rows } = await Promise.race([
        this.#pool.query<{ granted: number; tokens: number }>(CLAIM, [
          key,
          this.burst,
          this.batch,
          this.perSecond,
        ]),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${this.#claimTimeoutMs} ms`)),
            this.#claimTimeoutMs,
          );
        }),
      ]);
      this.#warned = false;
      const row = rows[0];
      const now = Date.now();
      const granted = row ? row.granted : 0;
      if (granted >= 1) {
        lease.tokens = granted;
        lease.until = now + this.#leaseMs;
        lease.retryUntil = 0;
        return undefined;
      }
      const tokens = row ? row.tokens : 0;
      lease.retry = Math.max(1, Math.ceil((1 - tokens) / this.perSecond));
      // Ask again only when a token may be there: until then every request is refused locally.
      lease.retryUntil = now + Math.min(1000, ((1 - tokens) / this.perSecond) * 1000);
      return undefined;
    } catch (err) {
      if (!this.#warned) {
        this.#warned = true;
        this.#log.warn(
          { err: describeError(err) },
          "rate limits fall back to this instance's own buckets: PostgreSQL did not answer",
        );
      }
      this.fallbacks++;
      this.#downUntil = Date.now() + DOWN_MS;
      return this.#fallback.take(key);
    } finally {
      clearTimeout(timer);
    }
  }

  #trim(): void {
    for (const [key, lease] of this.#leases) {
      if (this.#leases.size <= this.#maxKeys) break;
      if (!lease.claim) this.#leases.delete(key);
    }
  }

  async #sweep(): Promise<void> {
    const now = Date.now();
    for (const [key, lease] of this.#leases)
      if (!lease.claim && lease.until < now && lease.retryUntil < now) this.#leases.delete(key);
    const fullAfterMs = (this.burst / this.perSecond) * 1000;
    await this.#pool
      .query(
        "DELETE FROM cluster_rate WHERE at < extract(epoch FROM clock_timestamp()) * 1000 - $1::float8",
        [fullAfterMs + 60_000],
      )
      .catch(() => undefined);
  }

  close(): void {
    clearInterval(this.#sweeper);
  }
}
