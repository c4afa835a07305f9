/**
 * The one small interface the relay's jobs, batches and workflow runs are kept behind, named
 * for what the queue needs rather than for SQL, so another driver (Postgres) can follow without
 * touching the routes. Two drivers implement it: `sqlite-store.ts` (a data directory, durable)
 * and `memory-store.ts` (a relay without one, and tests). Byte results are files in
 * `resultsDir` in both; a job's request body is kept apart from its record.
 */
import { ClubError } from "../../errors.ts";
import type { DatabaseSync } from "node:sqlite";
import type { StoredRecord } from "./types.ts";

/** Where jobs, batches and runs are kept; see the file comment for the two drivers. */
export interface JobStore {
  /** Directory holding one file per byte result; see `results.ts`. */
  readonly resultsDir: string;
  /** The SQLite database, where there is one: the media library keeps its index there. */
  readonly database?: DatabaseSync;
  /** Every record saved and not removed, as last saved. Called once, before any `save`. */
  load(): Promise<StoredRecord[]>;
  /**
   * Saves a record, replacing the one with the same id; `body` (a job's request, as sent to the
   * provider) is given once, with the job's first save, and never written again. Writes happen
   * in call order; the promise resolves once this one is durable (committed) and rejects with
   * a `StoreError` when it could not be.
   */
  save(record: StoredRecord, body?: Buffer): Promise<void>;
  /** A job's request body, or undefined once it was dropped (or never stored). */
  body(id: string): Promise<Buffer | undefined>;
  /** Lets a job's request body go; the record stays. */
  dropBody(id: string): Promise<void>;
  /** Deletes a record and its body. */
  remove(id: string): Promise<void>;
  /** Writes whatever is pending and lets the store go. */
  close(): Promise<void>;
}

/**
 * A write the store could not make durable: `store_full` (the disk or the database is full),
 * or `store_failed` (anything else). Nothing of that write was kept.
 */
export class StoreError extends ClubError {
  // Not useless: it narrows `code` to the two the routes answer (507 or 503).
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor
  constructor(code: "store_full" | "store_failed", message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
