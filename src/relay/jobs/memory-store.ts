/** A `JobStore` that forgets everything on close: for relays without a data directory, and tests. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { USAGE_COUNTERS, type JobStore, type UsageRow } from "./store.ts";
import type { StoredRecord } from "./types.ts";

/**
 * Records and bodies live in maps; byte results in a fresh temporary directory, removed by
 * `close()`. Records are kept as copies, so a reload gives back what was saved, not what the
 * caller changed since.
 * @example
 * const store = await createMemoryStore();
 */
export async function createMemoryStore(): Promise<JobStore> {
  const resultsDir = await mkdtemp(join(tmpdir(), "club-relay-results-"));
  const records = new Map<string, StoredRecord>();
  const bodies = new Map<string, Buffer>();
  const usage = new Map<string, UsageRow>();
  return {
    resultsDir,
    load: () => Promise.resolve([...records.values()].map((r) => structuredClone(r))),
    save(record, body) {
      records.set(record.id, structuredClone(record));
      if (body && !bodies.has(record.id)) bodies.set(record.id, body);
      return Promise.resolve();
    },
    body: (id) => Promise.resolve(bodies.get(id)),
    dropBody(id) {
      bodies.delete(id);
      return Promise.resolve();
    },
    remove(id) {
      records.delete(id);
      bodies.delete(id);
      return Promise.resolve();
    },
    addUsage(rows) {
      for (const row of rows) {
        const key = JSON.stringify([row.member, row.provider, row.owner, row.model, row.day]);
        const had = usage.get(key);
        if (!had) usage.set(key, { ...row });
        else for (const c of USAGE_COUNTERS) had[c] += row[c];
      }
      return Promise.resolve();
    },
    readUsage(q) {
      const rows = [...usage.values()].filter(
        (r) =>
          ("member" in q ? r.member === q.member : r.owner === q.owner) &&
          r.day >= q.sinceDay &&
          (q.model === undefined || r.model === q.model),
      );
      return Promise.resolve(rows.map((r) => ({ ...r })));
    },
    pruneUsage(beforeDay) {
      for (const [key, r] of usage) if (r.day < beforeDay) usage.delete(key);
      return Promise.resolve();
    },
    async close() {
      records.clear();
      bodies.clear();
      usage.clear();
      await rm(resultsDir, { recursive: true, force: true });
    },
  };
}
