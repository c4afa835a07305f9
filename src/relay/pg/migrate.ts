/**
 * Schema migrations for PostgreSQL, run once when several relays start together: each
 * component (jobs, cluster, ...) has its own numbered list of migrations and its own row in
 * `club_schema`; the whole run holds a transaction-scoped advisory lock, so a second relay
 * starting at the same moment waits, then finds the schema already current. Add new entries at
 * the end of a component's list; never edit one that has shipped.
 */
import type pg from "pg";
import { UserError } from "../../errors.ts";

/** The advisory lock key all relays take while migrating (an arbitrary constant). */
const MIGRATION_LOCK = 0x636c7562; // "club"

/**
 * Brings `component`'s schema up to `migrations.length`; migration N (1-based) takes it from
 * N-1 to N. Returns the number of migrations applied by this call (0 when already current).
 */
export async function migrate(
  pool: pg.Pool,
  component: string,
  migrations: readonly string[],
): Promise<number> {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await client.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
    await client.query(
      "CREATE TABLE IF NOT EXISTS club_schema (component text PRIMARY KEY, version integer NOT NULL)",
    );
    const { rows } = await client.query<{ version: number }>(
      "SELECT version FROM club_schema WHERE component = $1",
      [component],
    );
    const current = rows[0]?.version ?? 0;
    if (current > migrations.length) {
      throw new UserError(
        "database_too_new",
        `the database's ${component} schema is version ${current}, newer than this relay knows (${migrations.length}); upgrade the relay`,
      );
    }
    for (const step of migrations.slice(current)) await client.query(step);
    await client.query(
      `INSERT INTO club_schema (component, version) VALUES ($1, $2)
       ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version`,
      [component, migrations.length],
    );
    await client.query("COMMIT");
    return migrations.length - current;
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
