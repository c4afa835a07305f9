/**
 * The `JobStore` drivers: one suite every driver runs (what a reload gives back), then what only
 * the file log does: survive a reopen, skip a torn line, compact, and lock its directory.
 */
import { existsSync, mkdtempSync, readFileSync, appendFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../../src/log.ts";
import { openFileStore } from "../../../src/relay/jobs/file-store.ts";
import { createMemoryStore } from "../../../src/relay/jobs/memory-store.ts";
import type { JobStore } from "../../../src/relay/jobs/store.ts";
import type { StoredRecord } from "../../../src/relay/jobs/types.ts";

const scratch = (): string => mkdtempSync(join(tmpdir(), "club-store-"));
const record = (id: string, extra: Record<string, unknown> = {}): StoredRecord => ({
  kind: "job",
  id,
  seq: 1,
  member: "alice",
  created: 0,
  ...extra,
});

interface Driver {
  name: string;
  open(dir: string): Promise<JobStore>;
  /** What a restart would give back: the file store is closed and opened again. */
  reload(store: JobStore, dir: string): Promise<{ store: JobStore; records: StoredRecord[] }>;
}

const drivers: Driver[] = [
  {
    name: "memory",
    open: () => createMemoryStore(),
    reload: async (store) => ({ store, records: await store.load() }),
  },
  {
    name: "file",
    open: (dir) => openFileStore(dir, silentLogger),
    async reload(store, dir) {
      await store.close();
      const again = await openFileStore(dir, silentLogger);
      return { store: again, records: await again.load() };
    },
  },
];

describe.each(drivers)("the $name store", (driver) => {
  it("gives back the last save of every record not removed", async () => {
    const dir = scratch();
    const store = await driver.open(dir);
    expect(await store.load()).toEqual([]);
    await store.save(record("a", { v: 1 }));
    await store.save(record("b"));
    const a = record("a", { v: 2 });
    await Promise.all([store.save(a), store.save(record("c"))]);
    await store.remove("b");
    await store.remove("never-saved");
    const { store: after, records } = await driver.reload(store, dir);
    expect(records.sort((x, y) => x.id.localeCompare(y.id))).toEqual([a, record("c")]);
    expect(existsSync(after.resultsDir)).toBe(true);
    await after.close();
  });

  it("writes saves in call order, the last one winning", async () => {
    const dir = scratch();
    const store = await driver.open(dir);
    await Promise.all(Array.from({ length: 50 }, (_, v) => store.save(record("a", { v }))));
    const { store: after, records } = await driver.reload(store, dir);
    expect(records).toEqual([record("a", { v: 49 })]);
    await after.close();
  });
});

describe("the file store", () => {
  it("skips a torn last line (a crash mid-write)", async () => {
    const dir = scratch();
    const store = await openFileStore(dir, silentLogger);
    await store.save(record("a"));
    await store.close();
    appendFileSync(join(dir, "jobs.jsonl"), '{"put":{"kind":"job","id":"b"');
    const again = await openFileStore(dir, silentLogger);
    expect((await again.load()).map((r) => r.id)).toEqual(["a"]);
    await again.close();
  });

  it("compacts a log holding more than twice the lines it needs", async () => {
    const dir = scratch();
    const store = await openFileStore(dir, silentLogger);
    for (let v = 0; v < 2500; v++) await store.save(record(`r${v % 10}`, { v }));
    await store.close();
    const lines = readFileSync(join(dir, "jobs.jsonl"), "utf8").trim().split("\n");
    expect(lines.length).toBeLessThan(1100);
    const again = await openFileStore(dir, silentLogger);
    const records = await again.load();
    expect(records).toHaveLength(10);
    expect(records.find((r) => r.id === "r9")).toEqual(record("r9", { v: 2499 }));
    await again.close();
  });

  it("keeps one relay per directory, and takes over the lock of a relay that died", async () => {
    const dir = scratch();
    const store = await openFileStore(dir, silentLogger);
    await expect(openFileStore(dir, silentLogger)).rejects.toMatchObject({
      code: "data_dir_locked",
      message: expect.stringMatching(/another relay \(pid \d+\) is using the data directory/),
    });
    await store.close();
    // A pid that cannot be running: the lock is stale.
    writeFileSync(join(dir, "relay.lock"), "2147483646\n");
    const again = await openFileStore(dir, silentLogger);
    await again.close();
    expect(existsSync(join(dir, "relay.lock"))).toBe(false);
  });
});
