/**
 * Rate limits across instances (cluster/rate.ts): a key spread over two instances gets its
 * rate once, not twice; the relay answers the key's 429 in the envelope from either instance;
 * while PostgreSQL cannot be reached each instance falls back to its own bucket; a flood of
 * keys keeps the local leases bounded.
 */
import OpenAI, { RateLimitError } from "openai";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { SharedRateLimiter } from "../../src/relay/cluster/rate.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { RateLimiter } from "../../src/relay/rate-limit.ts";
import type { Relay } from "../../src/relay/server.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";
import { clusterInstance } from "./instance.ts";

const ALICE = "sk-alice-rate-0123456789";

/** Takes `n` requests of `key`, alternating over `limiters`; counts the admitted ones. */
async function spread(
  limiters: { take(key: string): number | Promise<number> }[],
  n: number,
  key: string,
) {
  const started = Date.now();
  let admitted = 0;
  for (let i = 0; i < n; i++)
    if ((await limiters[i % limiters.length]!.take(key)) === 0) admitted++;
  return { admitted, seconds: (Date.now() - started) / 1000 };
}

describe.skipIf(!HAVE_PG)("rate limits across instances", () => {
  let url: string;
  const pools: pg.Pool[] = [];
  const limiters: SharedRateLimiter[] = [];
  const pool = () => {
    const p = new pg.Pool({ connectionString: url, max: 2 });
    pools.push(p);
    return p;
  };
  const limiter = async (options: Partial<Parameters<typeof SharedRateLimiter.start>[1]> = {}) => {
    const l = await SharedRateLimiter.start(pool(), { log: silentLogger, ...options });
    limiters.push(l);
    return l;
  };

  beforeAll(async () => {
    url = await freshDatabase("rate");
  });

  afterAll(async () => {
    for (const l of limiters) l.close();
    await Promise.all(pools.map((p) => p.end()));
  });

  it("gives a key its burst once over two instances, where two local buckets give it twice", async () => {
    const burst = 10;
    const shared = [await limiter({ perSecond: 1, burst }), await limiter({ perSecond: 1, burst })];
    const club = await spread(shared, 4 * burst, "two");
    // Tokens leave the shared bucket before they are spent: never more than it held.
    expect(club.admitted).toBeGreaterThanOrEqual(burst);
    expect(club.admitted).toBeLessThanOrEqual(burst + Math.floor(club.seconds * 1));
    // The same load on one bucket per instance: twice the burst (what the shared bucket prevents).
    const local = [
      new RateLimiter({ perSecond: 1, burst }),
      new RateLimiter({ perSecond: 1, burst }),
    ];
    expect((await spread(local, 4 * burst, "two")).admitted).toBeGreaterThanOrEqual(2 * burst);
    // With one token per claim, every admitted request asked the database; refusals mostly not.
    expect(shared[0]!.claims + shared[1]!.claims).toBeLessThan(4 * burst);
  });

  it("claims tokens a batch at a time, so a busy key asks the database once per batch", async () => {
    const l = await limiter({ perSecond: 1000, burst: 2000, batch: 50 });
    const { admitted } = await spread([l], 500, "busy");
    expect(admitted).toBe(500);
    expect(l.claims).toBe(10);
  });

  it("refuses with the wait the shared bucket gives", async () => {
    const l = await limiter({ perSecond: 0.5, burst: 1 });
    expect(await l.take("slow")).toBe(0);
    const wait = await l.take("slow");
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(2);
  });

  it("falls back to the instance's own bucket while PostgreSQL cannot be reached", async () => {
    const down = new pg.Pool({
      connectionString: "postgres://club@127.0.0.1:1/none",
      connectionTimeoutMillis: 200,
    });
    pools.push(down);
    const l = SharedRateLimiter.open(down, { log: silentLogger, perSecond: 1, burst: 3 });
    limiters.push(l);
    const { admitted } = await spread([l], 10, "offline");
    // The local bucket of the same rate decides: its burst, and nothing waits on the database.
    expect(admitted).toBeGreaterThanOrEqual(3);
    expect(admitted).toBeLessThanOrEqual(4);
    expect(l.fallbacks).toBe(10);
    // Only the first request asked; the others were decided while the database counted as down.
    expect(l.claims).toBe(1);
  });

  it("keeps its local leases bounded under a flood of keys", async () => {
    const l = await limiter({ perSecond: 10, maxKeys: 50 });
    for (let i = 0; i < 300; i++) await l.take(`key-${i}`);
    expect(l.size).toBeLessThanOrEqual(50);
  });

  it("answers 429 in the envelope from either instance once the key's club-wide rate is spent", async () => {
    const relays: Relay[] = [];
    const instance = (name: string) =>
      clusterInstance(name, url, new KeyRing({ [ALICE]: "alice" }), { rateLimit: 1 });
    relays.push(await instance("rate-a"), await instance("rate-b"));
    try {
      const clients = relays.map(
        (r) => new OpenAI({ baseURL: `${r.url}/v1`, apiKey: ALICE, maxRetries: 0 }),
      );
      const started = Date.now();
      let ok = 0;
      const refused: RateLimitError[] = [];
      for (let i = 0; i < 12; i++) {
        try {
          await clients[i % 2]!.models.list();
          ok++;
        } catch (err) {
          if (!(err instanceof RateLimitError)) throw err;
          refused.push(err);
        }
      }
      const seconds = (Date.now() - started) / 1000;
      // Burst 2 at 1 per second, club-wide: two instances give what one would.
      expect(ok).toBeGreaterThanOrEqual(2);
      expect(ok).toBeLessThanOrEqual(2 + Math.floor(seconds));
      expect(refused.length).toBe(12 - ok);
      expect(refused[0]!.error).toMatchObject({ type: "rate_limit_error" });
      expect(refused[0]!.message).toMatch(/too many requests for this key: retry in \d+ s/);
      expect(Number(refused[0]!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    } finally {
      await Promise.all(relays.map((r) => r.close()));
    }
  });
});
