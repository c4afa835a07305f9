/**
 * The relay's PostgreSQL connection pool (`--database postgres://…` or `CLUB_RELAY_DATABASE`),
 * built on `pg` (node-postgres, pure JavaScript). One pool per relay process, shared by every
 * part that keeps state in PostgreSQL; a pool error (the server went away) is logged, never
 * thrown, and the next query reconnects.
 */
import pg from "pg";
import { UserError } from "../../errors.ts";

/** Pool sizing and timeouts; each has a default. */
export interface PoolOptions {
  /** Most connections this relay holds open (default 10). */
  max?: number;
  /** A query that cannot get a connection within this many ms fails (default 10 000). */
  connectTimeoutMs?: number;
  /** Called with errors of idle connections (the server restarted, the network dropped). */
  onError?: (err: Error) => void;
}

/** True when `url` names a PostgreSQL database (`postgres://` or `postgresql://`). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** Opens a pool for `url`; throws a `UserError` for a URL that is not PostgreSQL's. */
export function openPool(url: string, options: PoolOptions = {}): pg.Pool {
  if (!isPostgresUrl(url)) {
    throw new UserError(
      "bad_database",
      `--database must be a postgres:// URL, got ${JSON.stringify(url)}`,
    );
  }
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
    application_name: "club-relay",
  });
  pool.on("error", (err) => options.onError?.(err));
  return pool;
}
