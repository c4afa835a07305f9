/**
 * The durable `JobStore`: SQLite through `node:sqlite`, `<dir>/jobs.db` (see `sqlite-open.ts`
 * for how it is opened and checked, `migrations.ts` for the schema). Writes are queued and go
 * in one transaction per turn of the event loop (a group commit, at most `maxWritesPerCommit`
 * writes each); a write's promise resolves after its COMMIT (fsynced, `synchronous=FULL`).
 * A job's body is inserted once with its first save; later saves rewrite only its row.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { StatementSync } from "node:sqlite";
import type { Logger } from "../../log.ts";
import { importJsonLog } from "./jsonl-import.ts";
import { checkRecord } from "./record-shape.ts";
import { SQLITE, loadSqlite, openDatabase, sqliteCode } from "./sqlite-open.ts";
import { StoreError, queueWrite, type JobStore, type PendingWrite } from "./store.ts";
import { usageStatements, type UsageOp } from "../usage-sqlite.ts";
import type { JobRecord, StoredRecord } from "./types.ts";

/** The table of each kind of record. */
const TABLES: Record<string, string> = { job: "jobs", batch: "batches", run: "runs" };

type Op =
  | { kind: "save"; record: StoredRecord; body?: Buffer | undefined }
  | { kind: "dropBody"; id: string }
  | { kind: "remove"; id: string }
  | UsageOp;

type Pending = PendingWrite<Op>;

/** What `openSqliteStore` takes besides the directory. */
export interface SqliteStoreOptions {
  log: Logger;
  /** Writes per transaction; 1 commits each on its own (see `JobLimits.maxWritesPerCommit`). */
  maxWritesPerCommit?: number;
}

function storeError(err: unknown, dir: string): StoreError {
  if (err instanceof StoreError) return err;
  if (sqliteCode(err) === SQLITE.FULL || (err as NodeJS.ErrnoException).code === "ENOSPC")
    return new StoreError(
      "store_full",
      `the relay's disk is full (${dir}): nothing was stored; free space there`,
      { cause: err },
    );
  return new StoreError("store_failed", `the job store ${dir} failed: ${(err as Error).message}`, {
    cause: err,
  });
}

function statements(db: import("node:sqlite").DatabaseSync): Record<string, StatementSync> {
  const upsert = (table: string, extra: string[] = []): StatementSync => {
    const cols = [
      "id",
      "member",
      "seq",
      "created",
      "status",
      "finished",
      "idempotency_key",
      ...extra,
      "data",
    ];
    const sets = cols.filter((c) => c !== "id").map((c) => `${c} = excluded.${c}`);
    return db.prepare(
      `INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map((c) => `:${c}`).join(", ")})
       ON CONFLICT (id) DO UPDATE SET ${sets.join(", ")}`,
    );
  };
  return {
    jobs: upsert("jobs", ["result_file"]),
    batches: upsert("batches"),
    runs: upsert("runs"),
    body: db.prepare(
      "INSERT INTO job_bodies (id, member, bytes, body) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    ),
    getBody: db.prepare("SELECT body FROM job_bodies WHERE id = ?"),
    dropBody: db.prepare("DELETE FROM job_bodies WHERE id = ?"),
    removeJob: db.prepare("DELETE FROM jobs WHERE id = ?"),
    removeBatch: db.prepare("DELETE FROM batches WHERE id = ?"),
    removeRun: db.prepare("DELETE FROM runs WHERE id = ?"),
    commit: db.prepare("UPDATE meta SET value = value + 1 WHERE key = 'commits'"),
  };
}

/**
 * Opens (creating) the store in `dir`, holding the directory's database exclusively; a
 * `jobs.jsonl` of an earlier version is imported once.
 * @example
 * const store = await openSqliteStore("/var/lib/club-provider/relay", { log });
 * const records = await store.load();
 */
export async function openSqliteStore(dir: string, o: SqliteStoreOptions): Promise<JobStore> {
  const resultsDir = join(dir, "results");
  await mkdir(resultsDir, { recursive: true, mode: 0o700 });
  // Loaded here, not at import: `node:sqlite` prints an ExperimentalWarning when it loads, and
  // every CLI command imports the relay's modules.
  const { DatabaseSync } = await loadSqlite();
  const opened = openDatabase(DatabaseSync, dir);
  const { db } = opened;
  let commits = opened.commits;
  const st = statements(db);
  const usage = usageStatements(db);
  const max = Math.max(1, o.maxWritesPerCommit ?? 1024);
  const pending: Pending[] = [];
  /** Bodies saved but not committed yet: an attempt may ask for one before its commit. */
  const unsaved = new Map<string, Buffer>();
  let scheduled = false;
  let closed = false;

  const apply = (op: Op): void => {
    if (op.kind === "usage" || op.kind === "pruneUsage") {
      usage.apply(op);
      return;
    }
    if (op.kind === "dropBody") {
      st.dropBody?.run(op.id);
      return;
    }
    if (op.kind === "remove") {
      for (const s of [st.removeJob, st.removeBatch, st.removeRun, st.dropBody]) s?.run(op.id);
      return;
    }
    const r = op.record as StoredRecord & Partial<JobRecord>;
    const table = TABLES[r.kind];
    if (table === undefined) throw new StoreError("store_failed", `no table for kind "${r.kind}"`);
    const row: Record<string, string | number | null> = {
      id: r.id,
      member: r.member,
      seq: r.seq,
      created: r.created,
      status: r.status ?? null,
      finished: r.finished ?? null,
      idempotency_key: r.idempotency_key ?? null,
      data: JSON.stringify(r),
    };
    if (table === "jobs") row.result_file = r.result?.kind === "file" ? r.id : null;
    st[table]?.run(row);
    if (op.body) st.body?.run(r.id, r.member, op.body.length, op.body);
  };

  /** One transaction: every op applied, the commit counter raised, COMMIT, then acknowledged. */
  const commitGroup = (group: Pending[]): void => {
    const failed = new Map<Pending, Error>();
    try {
      db.exec("BEGIN IMMEDIATE");
      const written = new Set<StoredRecord>();
      for (const p of group) {
        // A record saved twice in one transaction is written once, as it is now.
        if (p.op.kind === "save" && !p.op.body && written.has(p.op.record)) continue;
        try {
          apply(p.op);
          if (p.op.kind === "save") written.add(p.op.record);
          else if (p.op.kind === "remove") written.clear();
        } catch (err) {
          // A refused statement (a constraint) undoes only itself; anything else ends the group.
          if (sqliteCode(err) !== SQLITE.CONSTRAINT) throw err;
          failed.set(p, storeError(err, dir));
        }
      }
      st.commit?.run();
      db.exec("COMMIT");
      commits++;
      opened.acked(commits);
    } catch (err) {
      if (db.isTransaction) db.exec("ROLLBACK");
      const e = storeError(err, dir);
      for (const p of group) failed.set(p, e);
    }
    for (const p of group) {
      if (p.op.kind === "save" && p.op.body) unsaved.delete(p.op.record.id);
      p.done(failed.get(p));
    }
  };

  const flush = (): void => {
    scheduled = false;
    while (pending.length > 0) {
      const group = pending.splice(0, max);
      commitGroup(group);
    }
  };

  const enqueue = (op: Op): Promise<void> =>
    queueWrite(pending, closed, op, () => {
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });

  const load = async (): Promise<StoredRecord[]> => {
    const records: StoredRecord[] = [];
    for (const [kind, table] of Object.entries(TABLES)) {
      const rows = db.prepare(`SELECT id, data FROM ${table} ORDER BY seq`).iterate();
      for (const row of rows as Iterable<{ id: string; data: string }>) {
        const record = checkRecord(kind, row.id, row.data);
        if (typeof record === "string")
          o.log.warn({ id: row.id, table }, "skipping stored %s %s: %s", kind, row.id, record);
        else records.push(record);
      }
    }
    return Promise.resolve(records);
  };

  await importJsonLog(dir, o.log, (ops) => {
    let error: Error | undefined;
    commitGroup(ops.map((op) => ({ op, done: (err) => (error ??= err) })));
    if (error) throw error;
  });

  return {
    resultsDir,
    database: db,
    load,
    save(record, body) {
      if (body) unsaved.set(record.id, body);
      return enqueue({ kind: "save", record, body });
    },
    body(id) {
      const waiting = unsaved.get(id);
      if (waiting) return Promise.resolve(waiting);
      const row = st.getBody?.get(id) as { body: Uint8Array } | undefined;
      return Promise.resolve(
        row ? Buffer.from(row.body.buffer, row.body.byteOffset, row.body.length) : undefined,
      );
    },
    dropBody: (id) => enqueue({ kind: "dropBody", id }),
    remove: (id) => enqueue({ kind: "remove", id }),
    addUsage: (rows) => enqueue({ kind: "usage", rows }),
    readUsage: (query) => Promise.resolve(usage.read(query)),
    pruneUsage: (beforeDay) => enqueue({ kind: "pruneUsage", beforeDay }),
    close() {
      flush();
      closed = true;
      opened.close();
      return Promise.resolve();
    },
  };
}
