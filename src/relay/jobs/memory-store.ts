/** A `JobStore` that forgets everything on close: for relays without a data directory, and tests. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JobStore } from "./store.ts";
import type { StoredRecord } from "./types.ts";

/**
 * Records live in a map; byte results in a fresh temporary directory, removed by `close()`.
 * @example
 * const store = await createMemoryStore();
 */
export async function createMemoryStore(): Promise<JobStore> {
  const resultsDir = await mkdtemp(join(tmpdir(), "club-relay-results-"));
  const records = new Map<string, StoredRecord>();
  return {
    resultsDir,
    load: () => Promise.resolve([...records.values()]),
    save(record) {
      records.set(record.id, record);
      return Promise.resolve();
    },
    remove(id) {
      records.delete(id);
      return Promise.resolve();
    },
    async close() {
      records.clear();
      await rm(resultsDir, { recursive: true, force: true });
    },
  };
}
