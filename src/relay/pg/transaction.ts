/**
 * One PostgreSQL transaction on a connection of the pool: BEGIN, the caller's statements,
 * COMMIT; ROLLBACK and the store's error (`pgStoreError`) when anything fails. A connection that
 * failed is not given back to the pool.
 */
import type pg from "pg";
import { pgStoreError } from "./store.ts";

/**
 * Runs `work` in one transaction and resolves to what it returns.
 * @example
 * await inTransaction(pool, (client) => client.query("DELETE FROM media_items WHERE id = $1", [id]));
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect().catch((err: unknown) => {
    throw pgStoreError(err);
  });
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const result = await work(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    broken = err as Error;
    await client.query("ROLLBACK").catch(() => undefined);
    throw pgStoreError(err);
  } finally {
    client.release(broken);
  }
}
