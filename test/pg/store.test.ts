/**
 * The job store on PostgreSQL: the contract every driver keeps (`jobs/store-contract.ts`), then
 * what only it does: one relay holds a database (a second is refused while the holder renews
 * its lease, takes over once it stops), a relay that lost the database cannot write to it, a
 * clean close frees it at once, and a refused statement fails only its own write.
 */
import { join } from "node:path";
import type pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { openPgStore } from "../../src/relay/pg/store.ts";
import { openPool } from "../../src/relay/pg/pool.ts";
import type { JobStore } from "../../src/relay/jobs/store.ts";
import { job, record, scratch, storeContract } from "../relay/jobs/store-contract.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";

const pools: pg.Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.end()));
});

async function newPool(url?: string): Promise<{ pool: pg.Pool; url: string }> {
  const at = url ?? (await freshDatabase());
  const pool = openPool(at);
  pools.push(pool);
  return { pool, url: at };
}

const open = (pool: pg.Pool, dir = scratch(), leaseMs = 15_000): Promise<JobStore> =>
  openPgStore(pool, { log: silentLogger, resultsDir: join(dir, "results"), leaseMs });

const poolOf = new WeakMap<JobStore, pg.Pool>();

describe.skipIf(!HAVE_PG)("the PostgreSQL store", () => {
  storeContract({
    name: "postgres",
    async open(dir) {
      const { pool } = await newPool();
      const store = await open(pool, dir);
      poolOf.set(store, pool);
      return store;
    },
    async reload(store, dir) {
      const pool = poolOf.get(store)!;
      await store.close();
      const again = await open(pool, dir);
      return { store: again, records: await again.load() };
    },
  });

  it("refuses a second relay while the first renews its lease, naming it", async () => {
    const { pool, url } = await newPool();
    const first = await openPgStore(pool, {
      log: silentLogger,
      resultsDir: join(scratch(), "results"),
      leaseMs: 600,
      instance: "relay-one",
    });
    const { pool: other } = await newPool(url);
    await expect(open(other, scratch(), 600)).rejects.toMatchObject({
      code: "database_held",
      message: expect.stringMatching(/another relay \(relay-one\) holds this database/),
    });
    await first.save(record("still-mine"));
    await first.close();
  });

  it("takes over from a relay that stopped renewing, whose writes then fail", async () => {
    const { pool, url } = await newPool();
    const dead = await open(pool, scratch(), 300);
    await dead.save(job("j1"), Buffer.from("{}"));
    // The holder stops renewing (as when it is cut off from the database) without closing.
    await pool.query("UPDATE relay_holder SET renewed_at = now() - interval '1 hour'");
    const { pool: other } = await newPool(url);
    const taker = await open(other, scratch(), 300);
    expect((await taker.load()).map((r) => r.id)).toEqual(["j1"]);
    await expect(dead.save(job("j2"))).rejects.toMatchObject({
      code: "store_failed",
      message: expect.stringMatching(/another relay took over the database/),
    });
    await taker.save(job("j3"));
    expect((await taker.load()).map((r) => r.id).sort()).toEqual(["j1", "j3"]);
    await taker.close();
    await dead.close();
  });

  it("frees the database at close: the next relay starts at once", async () => {
    const { pool } = await newPool();
    const first = await open(pool, scratch(), 3_600_000);
    await first.close();
    const second = await open(pool, scratch(), 3_600_000);
    await second.close();
  });

  it("fails only the write a constraint refuses, and keeps the rest of its group", async () => {
    const { pool } = await newPool();
    const store = await open(pool);
    await store.save(job("a", { idempotency_key: "k" }));
    const results = await Promise.allSettled([
      store.save(job("b")),
      store.save(job("c", { idempotency_key: "k" })),
      store.save(job("d")),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((await store.load()).map((r) => r.id).sort()).toEqual(["a", "b", "d"]);
    await store.close();
  });
});
