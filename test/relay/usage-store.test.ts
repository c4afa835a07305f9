/**
 * The `UsageBook` over a `JobStore`: batched writes every `usageFlushMs`, rows past
 * `usageRetainDays` pruned. The usage rows of each driver are in the store contract
 * (`jobs/store-contract.ts`).
 */
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { createMemoryStore } from "../../src/relay/jobs/memory-store.ts";
import type { UsageRow } from "../../src/relay/jobs/store.ts";
import { DEFAULT_LIMITS } from "../../src/relay/jobs/types.ts";
import { UsageBook, utcDay } from "../../src/relay/usage-book.ts";

const row = (extra: Partial<UsageRow>): UsageRow => ({
  member: "bob",
  provider: "rig",
  owner: "alice",
  model: "m",
  day: "2026-12-01",
  requests: 1,
  errors: 0,
  prompt_tokens: 10,
  completion_tokens: 5,
  audio_seconds: 1.5,
  images: 0,
  videos: 0,
  bytes_out: 100,
  ...extra,
});

describe("utcDay", () => {
  it("names the UTC day of each time, across midnight and back, before 1970 too", () => {
    const midnight = Date.UTC(2026, 11, 6);
    const times = [
      midnight - 1,
      midnight,
      midnight + 1,
      midnight - 1,
      0,
      -1,
      midnight + 86_399_999,
    ];
    for (const ms of times) expect(utcDay(ms)).toBe(new Date(ms).toISOString().slice(0, 10));
  });
});

describe("the usage book", () => {
  const target = { member: "bob", model: "m", provider: "rig", owner: "alice" };
  const { member: _m, provider: _p, owner: _o, model: _d, day: _y, ...counts } = row({});

  it("writes what it counted every usageFlushMs, without being asked", async () => {
    const store = await createMemoryStore();
    const book = new UsageBook({ store, log: silentLogger, flushMs: 10, retainDays: 400 });
    book.record(target, counts);
    book.record(target, counts);
    await expect
      .poll(
        async () => (await store.readUsage({ member: "bob", sinceDay: "2000-01-01" }))[0]?.requests,
      )
      .toBe(2);
    await book.close();
    await store.close();
  });

  it("prunes rows older than usageRetainDays (default 400)", async () => {
    expect(DEFAULT_LIMITS.usageRetainDays).toBe(400);
    const store = await createMemoryStore();
    let now = Date.parse("2026-01-01T12:00:00Z");
    const book = new UsageBook({
      store,
      log: silentLogger,
      flushMs: 60_000,
      retainDays: 10,
      now: () => now,
    });
    book.record(target, counts);
    now += 5 * 86_400_000;
    book.record(target, counts);
    await book.flush();
    now += 6 * 86_400_000;
    await book.prune();
    const left = await store.readUsage({ member: "bob", sinceDay: "2000-01-01" });
    expect(left.map((r) => r.day)).toEqual(["2026-01-06"]);
    expect((await book.report("bob", { days: 400 })).used.map((r) => r.day)).toEqual([
      "2026-01-06",
    ]);
    await book.close();
    await store.close();
  });
});
