/**
 * The usage rows in both `JobStore` drivers (upserts that add, reads by member and by rig
 * owner, the prune by day, a reopen for SQLite), and the `UsageBook` over them: batched writes
 * every `usageFlushMs`, rows past `usageRetainDays` pruned.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { createMemoryStore } from "../../src/relay/jobs/memory-store.ts";
import { openSqliteStore } from "../../src/relay/jobs/sqlite-store.ts";
import type { JobStore, UsageRow } from "../../src/relay/jobs/store.ts";
import { DEFAULT_LIMITS } from "../../src/relay/jobs/types.ts";
import { UsageBook } from "../../src/relay/usage-book.ts";

const scratch = (): string => mkdtempSync(join(tmpdir(), "club-usage-store-"));
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

const drivers = [
  { name: "memory", open: (): Promise<JobStore> => createMemoryStore(), durable: false },
  {
    name: "sqlite",
    open: (dir: string): Promise<JobStore> => openSqliteStore(dir, { log: silentLogger }),
    durable: true,
  },
];

describe.each(drivers)("usage in the $name store", (driver) => {
  it("adds counts to the row of the same key and reads by member or by owner", async () => {
    const dir = scratch();
    let store = await driver.open(dir);
    await store.addUsage([row({}), row({ model: "n" }), row({ member: "carol", owner: "bob" })]);
    await store.addUsage([row({ requests: 2, errors: 1, audio_seconds: 0.25 })]);
    if (driver.durable) {
      await store.close();
      store = await driver.open(dir);
    }
    const bobs = await store.readUsage({ member: "bob", sinceDay: "2026-01-01" });
    expect(bobs.map((r) => ({ ...r }))).toEqual([
      row({
        requests: 3,
        errors: 1,
        prompt_tokens: 20,
        completion_tokens: 10,
        audio_seconds: 1.75,
        bytes_out: 200,
      }),
      row({ model: "n" }),
    ]);
    expect(
      await store.readUsage({ member: "bob", sinceDay: "2026-01-01", model: "n" }),
    ).toHaveLength(1);
    expect(await store.readUsage({ member: "bob", sinceDay: "2026-12-02" })).toEqual([]);
    const onBobs = await store.readUsage({ owner: "bob", sinceDay: "2026-01-01" });
    expect(onBobs.map((r) => r.member)).toEqual(["carol"]);
    await store.close();
  });

  it("prunes the rows of days before a day", async () => {
    const store = await driver.open(scratch());
    await store.addUsage([row({ day: "2025-01-01" }), row({ day: "2025-01-02" })]);
    await store.pruneUsage("2025-01-02");
    const left = await store.readUsage({ member: "bob", sinceDay: "2000-01-01" });
    expect(left.map((r) => r.day)).toEqual(["2025-01-02"]);
    await store.close();
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
