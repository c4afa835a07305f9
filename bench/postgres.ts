/**
 * The PostgreSQL a bench runs against: `CLUB_BENCH_PG_URL` when set, else a throwaway cluster
 * started like the test tier's (`test/pg/cluster.ts`, fsync off), which `stop()` removes.
 */
import { findPostgresBin, startCluster } from "../test/pg/cluster.ts";

export async function benchPostgres(): Promise<{ url: string; stop(): void }> {
  const given = process.env.CLUB_BENCH_PG_URL;
  if (given) return { url: given, stop: () => undefined };
  const bin = findPostgresBin();
  if (!bin) throw new Error("no PostgreSQL found (apt-get install postgresql)");
  const db = await startCluster(bin);
  return { url: db.url, stop: () => db.stop() };
}
