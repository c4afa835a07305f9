/** `createRelay({ database })`: one shared pool, exposed as `relay.pool`, ended at close. */
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay } from "../../src/relay/server.ts";
import { openPool } from "../../src/relay/pg/pool.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";

describe.skipIf(!HAVE_PG)("a relay on PostgreSQL", () => {
  it("opens one pool for --database, queries through it, and ends it at close", async () => {
    const relay = await createRelay({
      port: 0,
      keys: new KeyRing({}),
      log: silentLogger,
      database: await freshDatabase(),
    });
    const pool = relay.pool;
    expect(pool).toBeDefined();
    const { rows } = await pool!.query<{ n: number }>("SELECT 1 AS n");
    expect(rows).toEqual([{ n: 1 }]);
    await relay.close();
    expect(pool!.ended).toBe(true);
  });

  it("uses a pool it is given and leaves it open at close", async () => {
    const pool = openPool(await freshDatabase());
    const relay = await createRelay({ port: 0, keys: new KeyRing({}), log: silentLogger, pool });
    expect(relay.pool).toBe(pool);
    await relay.close();
    expect(pool.ended).toBe(false);
    await pool.end();
  });

  it("refuses to start when the database cannot be reached", async () => {
    await expect(
      createRelay({
        port: 0,
        keys: new KeyRing({}),
        log: silentLogger,
        database: "postgres://nobody@127.0.0.1:1/none",
      }),
    ).rejects.toThrow(/ECONNREFUSED/);
  });
});
