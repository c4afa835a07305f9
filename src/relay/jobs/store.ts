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
  /**
   * Adds counts to the usage rows of the same key (creating them); in call order with the other
   * writes, durable when the promise resolves.
   */
  addUsage(rows: readonly UsageRow[]): Promise<void>;
  /** The usage rows from `sinceDay` on, of one member or of the rigs of one owner. */
  readUsage(query: UsageQuery): Promise<UsageRow[]>;
  /** Deletes the usage rows of days before `beforeDay`. */
  pruneUsage(beforeDay: string): Promise<void>;
  /** Writes whatever is pending and lets the store go. */
  close(): Promise<void>;
}

/** What one member used of one rig, one model, one UTC day. */
export interface UsageKey {
  /** The member whose key made the requests. */
  member: string;
  /** The rig that served them (its name) and the member who owns it. */
  provider: string;
  owner: string;
  model: string;
  /** The UTC day, `YYYY-MM-DD`. */
  day: string;
}

/** The counters of a usage row. */
export interface UsageCounts {
  requests: number;
  /** Answers with a status of 400 or more. */
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  audio_seconds: number;
  images: number;
  videos: number;
  /** Bytes of answers sent on to the member. */
  bytes_out: number;
}

/** One row of the usage table. */
export type UsageRow = UsageKey & UsageCounts;

/** Which usage rows to read: by `member` (what they used) or by `owner` (use of their rigs). */
export type UsageQuery = ({ member: string } | { owner: string }) & {
  sinceDay: string;
  model?: string;
};

/** The counter columns, in the order the drivers write them. */
export const USAGE_COUNTERS: readonly (keyof UsageCounts)[] = [
  "requests",
  "errors",
  "prompt_tokens",
  "completion_tokens",
  "audio_seconds",
  "images",
  "videos",
  "bytes_out",
];

/**
 * A write the store could not make durable: `store_full` (the disk or the database is full),
 * `database_unavailable` (PostgreSQL cannot be reached), or `store_failed` (anything else).
 * Nothing of that write was kept.
 */
export class StoreError extends ClubError {
  // Not useless: it narrows `code` to the three the routes answer (507 or 503).
  // eslint-disable-next-line @typescript-eslint/no-useless-constructor
  constructor(
    code: "store_full" | "store_failed" | "database_unavailable",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** A write waiting for its store's next transaction; `done` once that commits or fails. */
export interface PendingWrite<Op> {
  op: Op;
  done: (err?: Error) => void;
}

/**
 * Queues `op` for a driver's next group commit and calls `wake` to have one scheduled; settles
 * with that commit. A closed store refuses at once. Both drivers (SQLite, PostgreSQL) queue so.
 */
export function queueWrite<Op>(
  pending: PendingWrite<Op>[],
  closed: boolean,
  op: Op,
  wake: () => unknown,
): Promise<void> {
  return new Promise((resolve, reject) => {
    if (closed) {
      reject(new StoreError("store_failed", "the job store is closed"));
      return;
    }
    pending.push({ op, done: (err) => (err ? reject(err) : resolve()) });
    wake();
  });
}
