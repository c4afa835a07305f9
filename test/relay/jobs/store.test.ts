/**
 * The `JobStore` drivers: the contract every driver keeps (`store-contract.ts`), run for memory
 * and SQLite (PostgreSQL runs it in `test/pg/store.test.ts`), then what only the SQLite store
 * does: its schema version, its lock, group commits, rows of the wrong shape, and the import of
 * an old `jobs.jsonl`.
 */
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { createLogger, silentLogger } from "../../../src/log.ts";
import { createMemoryStore } from "../../../src/relay/jobs/memory-store.ts";
import { MIGRATIONS } from "../../../src/relay/jobs/migrations.ts";
import { openSqliteStore } from "../../../src/relay/jobs/sqlite-store.ts";
import { byId, job, record, scratch, storeContract, type StoreDriver } from "./store-contract.ts";

/** A database of the store in `dir`, opened after the store closed (the lock is gone). */
function inspect<T>(dir: string, read: (db: DatabaseSync) => T): T {
  const db = new DatabaseSync(join(dir, "jobs.db"));
  try {
    return read(db);
  } finally {
    db.close();
  }
}

const drivers: StoreDriver[] = [
  {
    name: "memory",
    open: () => createMemoryStore(),
    reload: async (store) => ({ store, records: await store.load() }),
  },
  {
    name: "sqlite",
    open: (dir) => openSqliteStore(dir, { log: silentLogger }),
    async reload(store, dir) {
      await store.close();
      const again = await openSqliteStore(dir, { log: silentLogger });
      return { store: again, records: await again.load() };
    },
  },
];

describe.each(drivers)("the $name store", (driver) => {
  storeContract(driver);
});

describe("the SQLite store", () => {
  it("creates its schema at the latest version, and refuses a database newer than it knows", async () => {
    const dir = scratch();
    await (await openSqliteStore(dir, { log: silentLogger })).close();
    const version = (db: DatabaseSync): unknown =>
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    expect(inspect(dir, version)).toBe(MIGRATIONS.length);
    inspect(dir, (db) => db.exec(`PRAGMA user_version = ${MIGRATIONS.length + 1}`));
    await expect(openSqliteStore(dir, { log: silentLogger })).rejects.toMatchObject({
      code: "store_too_new",
      message: expect.stringMatching(/newer than this relay knows/),
    });
  });

  it("keeps one relay per directory with SQLite's lock, and ignores an old relay.lock", async () => {
    const dir = scratch();
    // The pid file of the old store, naming this very process (a PID 1 restarted in a container).
    writeFileSync(join(dir, "relay.lock"), `${process.pid}\n`);
    const store = await openSqliteStore(dir, { log: silentLogger });
    expect(existsSync(join(dir, "relay.lock"))).toBe(false);
    await expect(openSqliteStore(dir, { log: silentLogger })).rejects.toMatchObject({
      code: "data_dir_locked",
      message: `another relay is using ${dir}: stop it, or give this relay its own --data-dir`,
    });
    await store.close();
    await (await openSqliteStore(dir, { log: silentLogger })).close();
  });

  it("commits the saves of one tick in one transaction, or each alone with maxWritesPerCommit 1", async () => {
    const commits = (dir: string): number =>
      inspect(
        dir,
        (db) =>
          (db.prepare("SELECT value FROM meta WHERE key = 'commits'").get() as { value: number })
            .value,
      );
    for (const [max, expected] of [
      [1024, 1],
      [1, 20],
      [8, 3],
    ] as const) {
      const dir = scratch();
      const store = await openSqliteStore(dir, { log: silentLogger, maxWritesPerCommit: max });
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.save(record(`r${i}`))));
      await store.close();
      expect(commits(dir)).toBe(expected);
    }
  });

  it("writes a body once however often its job is saved", async () => {
    const dir = scratch();
    const store = await openSqliteStore(dir, { log: silentLogger });
    const body = Buffer.alloc(1024 * 1024, "x");
    await store.save(job("a", { body_bytes: body.length }), body);
    for (let attempts = 1; attempts <= 20; attempts++)
      await store.save(job("a", { body_bytes: body.length, attempts }));
    await store.close();
    const sizes = inspect(dir, (db) => ({
      rows: db.prepare("SELECT length(data) AS n FROM jobs").all() as { n: number }[],
      bodies: db.prepare("SELECT length(body) AS n FROM job_bodies").all() as { n: number }[],
    }));
    expect(sizes.bodies).toEqual([{ n: body.length }]);
    expect(sizes.rows[0]?.n).toBeLessThan(1024);
  });

  it("skips rows of the wrong shape with a warning naming each, and loads the rest", async () => {
    const dir = scratch();
    const store = await openSqliteStore(dir, { log: silentLogger });
    await store.save(job("good"), Buffer.from("{}"));
    await store.close();
    inspect(dir, (db) => {
      const put = db.prepare(
        "INSERT INTO jobs (id, member, seq, created, status, data) VALUES (?, 'alice', 1, 0, 'QUEUED', ?)",
      );
      put.run("job_notjson", "{not json");
      put.run("job_nostatus", JSON.stringify({ ...job("job_nostatus"), status: "LOST" }));
      put.run("job_otherid", JSON.stringify(job("job_someone_else")));
    });
    const out = new PassThrough();
    let text = "";
    out.on("data", (c: Buffer) => (text += c.toString()));
    const log = createLogger({ format: "json", level: "warn", destination: out });
    const again = await openSqliteStore(dir, { log });
    expect((await again.load()).map((r) => r.id)).toEqual(["good"]);
    await again.close();
    const warnings = text.split("\n").filter(Boolean);
    expect(warnings).toHaveLength(3);
    for (const [id, why] of [
      ["job_notjson", "not JSON"],
      ["job_nostatus", "status"],
      ["job_otherid", "another id"],
    ] as const)
      expect(warnings.some((w) => w.includes(id) && w.includes(why))).toBe(true);
  });

  it("imports the jobs.jsonl of an earlier version once, bodies apart", async () => {
    const dir = scratch();
    const old = { ...job("j1"), body: { model: "m", prompt: "kept" } } as Record<string, unknown>;
    delete old.body_bytes;
    const lines = [
      { put: old },
      { put: record("b1") },
      { put: record("gone") },
      { del: "gone" },
    ].map((l) => JSON.stringify(l));
    writeFileSync(join(dir, "jobs.jsonl"), `${lines.join("\n")}\n{"put":{"kind":"job"`);
    const store = await openSqliteStore(dir, { log: silentLogger });
    const records = byId(await store.load());
    expect(records.map((r) => r.id)).toEqual(["b1", "j1"]);
    expect(records[1]).not.toHaveProperty("body");
    expect(records[1]).toMatchObject({ body_bytes: 29 });
    expect((await store.body("j1"))?.toString()).toBe('{"model":"m","prompt":"kept"}');
    await store.close();
    expect(existsSync(join(dir, "jobs.jsonl"))).toBe(false);
    expect(existsSync(join(dir, "jobs.jsonl.imported"))).toBe(true);
  });
});
