/**
 * Global setup of the PostgreSQL tier: provides `pgUrl` (a superuser URL) to every test file.
 * Uses `CLUB_TEST_PG_URL` when set, else starts a throwaway cluster (test/pg/cluster.ts). When
 * no PostgreSQL can be started it says so loudly and the tier's tests skip, except under CI
 * (`CI=true`), where that is a failure.
 */
import type { TestProject } from "vitest/node";
import { findPostgresBin, startCluster, type Cluster } from "./cluster.ts";

let cluster: Cluster | undefined;

export default async function setup(project: TestProject): Promise<() => void> {
  let url = process.env.CLUB_TEST_PG_URL ?? "";
  if (!url) {
    const bin = findPostgresBin();
    try {
      if (!bin) throw new Error("no PostgreSQL found (apt-get install postgresql)");
      cluster = await startCluster(bin);
      url = cluster.url;
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (process.env.CI) throw new Error(`PostgreSQL tier: cannot start PostgreSQL: ${why}`);
      console.warn(`\n!!! PostgreSQL tier SKIPPED: cannot start PostgreSQL: ${why}\n`);
    }
  }
  project.provide("pgUrl", url);
  return () => cluster?.stop();
}

declare module "vitest" {
  export interface ProvidedContext {
    pgUrl: string;
  }
}
