/** The tier's own harness: a fresh database answers queries and is isolated from another. */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { freshDatabase, HAVE_PG } from "./db.ts";

describe.skipIf(!HAVE_PG)("PostgreSQL tier harness", () => {
  it("gives each caller its own empty database", async () => {
    const [a, b] = await Promise.all([freshDatabase(), freshDatabase()]);
    expect(a).not.toBe(b);
    const client = new pg.Client({ connectionString: a });
    await client.connect();
    try {
      await client.query("CREATE TABLE marker (id int)");
      const { rows } = await client.query<{ v: string }>(
        "SELECT current_setting('server_version') AS v",
      );
      expect(Number.parseInt(rows[0]!.v, 10)).toBeGreaterThanOrEqual(13);
    } finally {
      await client.end();
    }
    const other = new pg.Client({ connectionString: b });
    await other.connect();
    try {
      const { rows } = await other.query("SELECT to_regclass('marker') AS t");
      expect(rows[0].t).toBeNull();
    } finally {
      await other.end();
    }
  });
});
