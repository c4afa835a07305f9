/** Migrations on PostgreSQL: applied once, in order, even when several relays start together. */
import { afterEach, describe, expect, it } from "vitest";
import type pg from "pg";
import { migrate } from "../../src/relay/pg/migrate.ts";
import { openPool } from "../../src/relay/pg/pool.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";

const pools: pg.Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.end()));
});

const STEPS = [
  "CREATE TABLE counter (n integer NOT NULL)",
  "INSERT INTO counter (n) VALUES (1)",
  "UPDATE counter SET n = n + 1",
];

describe.skipIf(!HAVE_PG)("PostgreSQL migrations", () => {
  it("applies each migration once when five relays start at the same moment", async () => {
    const url = await freshDatabase();
    for (let i = 0; i < 5; i++) pools.push(openPool(url));
    const applied = await Promise.all(pools.map((p) => migrate(p, "test", STEPS)));
    expect(applied.sort()).toEqual([0, 0, 0, 0, 3]);
    const { rows } = await pools[0]!.query<{ n: number }>("SELECT n FROM counter");
    expect(rows).toEqual([{ n: 2 }]);
  });

  it("applies only the new ones on the next start, and refuses a schema newer than it knows", async () => {
    const url = await freshDatabase();
    const pool = openPool(url);
    pools.push(pool);
    expect(await migrate(pool, "test", STEPS.slice(0, 2))).toBe(2);
    expect(await migrate(pool, "test", STEPS)).toBe(1);
    await expect(migrate(pool, "test", STEPS.slice(0, 1))).rejects.toThrow(
      /newer than this relay knows/,
    );
  });

  it("rolls back a migration that fails, leaving the version where it was", async () => {
    const url = await freshDatabase();
    const pool = openPool(url);
    pools.push(pool);
    await expect(migrate(pool, "test", [STEPS[0]!, "NOT SQL"])).rejects.toThrow(/syntax error/);
    expect(await migrate(pool, "test", STEPS)).toBe(3);
  });

  it("refuses a database URL that is not PostgreSQL's", () => {
    expect(() => openPool("/var/lib/club/jobs.db")).toThrow(/postgres:\/\/ URL/);
  });
});
