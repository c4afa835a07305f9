/**
 * The `JobStore` contract every driver keeps (memory, SQLite, PostgreSQL): what a reload gives
 * back, saves in call order, bodies kept apart, usage rows added to and read by member or by
 * rig owner, and the prune by day. `store.test.ts` runs it for memory and SQLite,
 * `test/pg/store.test.ts` for PostgreSQL.
 */
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import type { JobStore, UsageRow } from "../../../src/relay/jobs/store.ts";
import type { StoredRecord } from "../../../src/relay/jobs/types.ts";

/** How the contract opens and restarts one driver. */
export interface StoreDriver {
  name: string;
  /** A new, empty store; `dir` is a fresh directory it may use. */
  open(dir: string): Promise<JobStore>;
  /** What a restart would give back: a durable store is closed and opened again on `dir`. */
  reload(store: JobStore, dir: string): Promise<{ store: JobStore; records: StoredRecord[] }>;
}

export const scratch = (): string => mkdtempSync(join(tmpdir(), "club-store-"));
export const record = (id: string, extra: Record<string, unknown> = {}): StoredRecord =>
  ({
    kind: "batch",
    id,
    seq: 1,
    member: "alice",
    created: 0,
    jobs: [],
    custom_ids: [],
    ...extra,
  }) as StoredRecord;
export const job = (id: string, extra: Record<string, unknown> = {}): StoredRecord =>
  record(id, {
    kind: "job",
    endpoint: "/v1/images/generations",
    model: "m",
    status: "QUEUED",
    queued: 0,
    attempts: 0,
    body_bytes: 2,
    ...extra,
  });
export const byId = (records: StoredRecord[]): StoredRecord[] =>
  records.sort((x, y) => x.id.localeCompare(y.id));
const usageRow = (extra: Partial<UsageRow>): UsageRow => ({
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

/** Defines the contract's tests for `driver` (call inside a `describe`). */
export function storeContract(driver: StoreDriver): void {
  it("gives back the last save of every record not removed", async () => {
    const dir = scratch();
    const store = await driver.open(dir);
    expect(await store.load()).toEqual([]);
    await store.save(record("a", { seq: 1 }));
    await store.save(record("b"));
    const a = record("a", { seq: 2 });
    await Promise.all([store.save(a), store.save(job("c"), Buffer.from("{}"))]);
    await store.remove("b");
    await store.remove("never-saved");
    const { store: after, records } = await driver.reload(store, dir);
    expect(byId(records)).toEqual([a, job("c")]);
    expect(existsSync(after.resultsDir)).toBe(true);
    await after.close();
  });

  it("writes saves in call order, the last one winning", async () => {
    const dir = scratch();
    const store = await driver.open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, v) => store.save(record("a", { seq: v }))));
    const { store: after, records } = await driver.reload(store, dir);
    expect(records).toEqual([record("a", { seq: 49 })]);
    await after.close();
  });

  it("keeps a job's body apart: given once, kept across saves, gone when dropped or removed", async () => {
    const dir = scratch();
    const store = await driver.open(dir);
    const body = Buffer.from('{"model":"m","prompt":"x"}');
    await store.save(job("a"), body);
    await store.save(job("b"), Buffer.from("{}"));
    await store.save(job("a", { status: "FAILED" }));
    expect(await store.body("a")).toEqual(body);
    const { store: after, records } = await driver.reload(store, dir);
    expect(records.find((r) => r.id === "a")).not.toHaveProperty("body");
    expect(await after.body("a")).toEqual(body);
    await after.dropBody("a");
    await after.remove("b");
    expect(await after.body("a")).toBeUndefined();
    expect(await after.body("b")).toBeUndefined();
    expect(byId(await after.load()).map((r) => r.id)).toEqual(["a"]);
    await after.close();
  });

  it("adds usage counts to the row of the same key and reads by member or by owner", async () => {
    const dir = scratch();
    const store = await driver.open(dir);
    await store.addUsage([
      usageRow({}),
      usageRow({ model: "n" }),
      usageRow({ member: "carol", owner: "bob" }),
    ]);
    await store.addUsage([usageRow({ requests: 2, errors: 1, audio_seconds: 0.25 })]);
    const { store: after } = await driver.reload(store, dir);
    const bobs = await after.readUsage({ member: "bob", sinceDay: "2026-01-01" });
    expect(bobs.map((r) => ({ ...r }))).toEqual([
      usageRow({
        requests: 3,
        errors: 1,
        prompt_tokens: 20,
        completion_tokens: 10,
        audio_seconds: 1.75,
        bytes_out: 200,
      }),
      usageRow({ model: "n" }),
    ]);
    expect(
      await after.readUsage({ member: "bob", sinceDay: "2026-01-01", model: "n" }),
    ).toHaveLength(1);
    expect(await after.readUsage({ member: "bob", sinceDay: "2026-12-02" })).toEqual([]);
    const onBobs = await after.readUsage({ owner: "bob", sinceDay: "2026-01-01" });
    expect(onBobs.map((r) => r.member)).toEqual(["carol"]);
    await after.close();
  });

  it("prunes the usage rows of days before a day", async () => {
    const store = await driver.open(scratch());
    await store.addUsage([usageRow({ day: "2025-01-01" }), usageRow({ day: "2025-01-02" })]);
    await store.pruneUsage("2025-01-02");
    const left = await store.readUsage({ member: "bob", sinceDay: "2000-01-01" });
    expect(left.map((r) => r.day)).toEqual(["2025-01-02"]);
    await store.close();
  });
}
