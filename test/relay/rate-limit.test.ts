import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { RateLimiter } from "../../src/relay/rate-limit.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";

describe("RateLimiter", () => {
  it("allows a burst, then the sustained rate, per key", () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 2, burst: 3, now: () => now });
    expect([limiter.take("a"), limiter.take("a"), limiter.take("a")]).toEqual([0, 0, 0]);
    expect(limiter.take("a")).toBe(1);
    expect(limiter.take("b")).toBe(0);
    now += 500;
    expect(limiter.take("a")).toBe(0);
    expect(limiter.take("a")).toBe(1);
  });
});

describe("relay rate limit", () => {
  let relay: Relay;
  beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      keys: new KeyRing({ "sk-limited-000000": "alice", "sk-other-0000000": "bob" }),
      log: silentLogger,
      rateLimit: 1,
    });
  });
  afterAll(() => relay.close());

  const get = (key: string) =>
    fetch(`${relay.url}/v1/models`, { headers: { authorization: `Bearer ${key}` } });

  it("answers 429 with Retry-After past a key's rate, leaving other keys alone", async () => {
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await get("sk-limited-000000")).status);
    expect(statuses.slice(0, 2)).toEqual([200, 200]);
    const refused = await get("sk-limited-000000");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toMatch(/^\d+$/);
    expect(await refused.json()).toMatchObject({ error: { type: "rate_limit_error" } });
    expect((await get("sk-other-0000000")).status).toBe(200);
  });
});
