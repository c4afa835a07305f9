/**
 * Per-test-file databases on the tier's cluster: `freshDatabase()` creates an empty database
 * with a unique name and returns its URL, so files running in parallel never share state.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

/** The cluster's superuser URL, or "" when the tier is skipped (see global-setup.ts). */
export const PG_URL: string = inject("pgUrl");

/** True when a PostgreSQL server is available to this tier. */
export const HAVE_PG = PG_URL !== "";

/** Creates an empty database and returns its URL. */
export async function freshDatabase(prefix = "t"): Promise<string> {
  const name = `${prefix}_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return url.toString();
}
