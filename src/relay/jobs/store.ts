/**
 * The one small interface the relay's jobs, batches and workflow runs are kept behind. Two
 * drivers implement it: `file-store.ts` (the default, durable) and `memory-store.ts` (a relay
 * without a data directory, and tests). Byte results are files in `resultsDir` in both.
 */
import type { StoredRecord } from "./types.ts";

/** Where jobs, batches and runs are kept; see the file comment for the two drivers. */
export interface JobStore {
  /** Directory holding one file per byte result; see `results.ts`. */
  readonly resultsDir: string;
  /** Every record saved and not removed, as last saved. Called once, before any `save`. */
  load(): Promise<StoredRecord[]>;
  /**
   * Saves a record, replacing the one with the same id. Writes happen in call order; the
   * promise resolves once this one is written. The store may keep `record` and read it again
   * later (to compact), so callers hand it the object they go on updating.
   */
  save(record: StoredRecord): Promise<void>;
  remove(id: string): Promise<void>;
  /** Writes whatever is pending and lets the store go. */
  close(): Promise<void>;
}
