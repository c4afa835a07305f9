/**
 * The `JobStore` on PostgreSQL (`--database postgres://…`): jobs, batches, workflow runs, their
 * request bodies and usage in the tables of `schema.ts`, through the relay's one pool. Writes
 * are queued and go in one transaction per turn of the event loop (a group commit, at most
 * `maxWritesPerCommit` writes each), one transaction at a time, so they land in call order; a
 * write's promise resolves after its COMMIT.
 *
 * The relay keeps its jobs in memory and this store is where they last (as with SQLite), so one
 * relay holds the database at a time: the `relay_holder` row names it, with a lease it renews
 * (`leaseMs`, default 15 s) and an epoch raised at each take-over. Every transaction renews the
 * lease only while the epoch is still this relay's, so a relay that lost the database to another
 * (its lease passed while it was cut off) can no longer write: its writes fail and its requests
 * get 503. A second relay started on a held database waits one lease to see whether the holder
 * is alive, then takes over (the holder died) or refuses to start, naming it.
 *
 * Instances of a club (`owner` set: the instance's id) share the tables instead: each loads and
 * writes only the records it owns, and a save of a record another instance has taken over (this
 * one was expired while cut off; see `cluster/work.ts`) fails alone, as a refused statement.
 */
import { randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import type pg from "pg";
import { UserError, describeError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import { checkRecord } from "../jobs/record-shape.ts";
import {
  StoreError,
  USAGE_COUNTERS,
  queueWrite,
  type JobStore,
  type PendingWrite,
  type UsageQuery,
  type UsageRow,
} from "../jobs/store.ts";
import type { JobRecord, StoredRecord } from "../jobs/types.ts";
import { migrate } from "./migrate.ts";
import { PG_JOB_MIGRATIONS } from "./schema.ts";

/** The table of each kind of record. */
const TABLES: Record<string, string> = { job: "jobs", batch: "batches", run: "runs" };
const COLUMNS = ["id", "member", "seq", "created", "status", "finished", "idempotency_key"];
const USAGE_KEY = ["member", "provider", "owner", "model", "day"] as const;

/** The default lease of the relay holding the database. */
export const DEFAULT_LEASE_MS = 15_000;

type Op =
  | { kind: "save"; record: StoredRecord; body?: Buffer | undefined }
  | { kind: "dropBody"; id: string }
  | { kind: "remove"; id: string }
  | { kind: "usage"; rows: readonly UsageRow[] }
  | { kind: "pruneUsage"; beforeDay: string };

type Pending = PendingWrite<Op>;

/** What `openPgStore` takes besides the pool. */
export interface PgStoreOptions {
  log: Logger;
  /** Where byte results are kept as files (`<dataDir>/results`). */
  resultsDir: string;
  /** Writes per transaction; 1 commits each on its own (see `JobLimits.maxWritesPerCommit`). */
  maxWritesPerCommit?: number;
  /** How long the holder's lease lasts without a renewal (default 15 s; renewed each third). */
  leaseMs?: number;
  /** Names this relay in `relay_holder` (default host, pid and a random part). */
  instance?: string;
  /**
   * The id of this cluster instance: records are written with it as their owner and only its
   * own are loaded; no holder row is taken (instances share the tables).
   */
  owner?: string;
}

/** A save of a record that another instance owns now: it fails alone, like a constraint. */
class OwnerChanged extends StoreError {
  constructor(id: string, owner: string) {
    super(
      "store_failed",
      `${id} is kept by another relay instance now (this one, ${owner}, was dropped from the club while cut off): its change was not stored`,
    );
  }
}

/** A SQLSTATE of an integrity constraint (class 23): the statement alone is refused. */
const isConstraint = (err: unknown): boolean =>
  err instanceof OwnerChanged ||
  (typeof (err as { code?: unknown }).code === "string" &&
    (err as { code: string }).code.startsWith("23"));

/**
 * True for an error of reaching the server rather than of the statement: no SQLSTATE at all
 * (a refused or cut connection, a connect timeout), or class 08 (connection) or 57 (operator
 * intervention: the server shutting down or starting).
 */
function isUnreachable(code: unknown): boolean {
  if (typeof code !== "string" || !/^[0-9A-Z]{5}$/.test(code)) return true;
  return code.startsWith("08") || code.startsWith("57");
}

/** Turns a driver error into the store's: full (507), unavailable or failed (503). */
export function pgStoreError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown }).code;
  if (code === "53100")
    return new StoreError(
      "store_full",
      "the relay's database is out of disk space: nothing was stored",
      { cause: err },
    );
  if (isUnreachable(code))
    return new StoreError(
      "database_unavailable",
      `the relay's database is unavailable (${describeError(err)}): nothing was stored`,
      { cause: err },
    );
  return new StoreError(
    "store_failed",
    `the relay's database refused a write (${describeError(err)}): nothing was stored`,
    { cause: err },
  );
}

const FENCE = "UPDATE relay_holder SET renewed_at = now() WHERE id = 1 AND epoch = $1";

function fencedError(instance: string): StoreError {
  return new StoreError(
    "store_failed",
    `another relay took over the database from this one (${instance}); restart this relay`,
  );
}

/**
 * Takes the holder row for `instance`: at once when no live relay holds it, after one lease
 * when its holder stopped renewing, never while that holder renews. Returns the new epoch.
 */
async function takeHolder(
  pool: pg.Pool,
  instance: string,
  leaseMs: number,
  log: Logger,
): Promise<string> {
  const take = async (): Promise<string | undefined> => {
    const { rows } = await pool.query<{ epoch: string }>(
      `INSERT INTO relay_holder (id, epoch, instance, renewed_at) VALUES (1, 1, $1, now())
       ON CONFLICT (id) DO UPDATE SET epoch = relay_holder.epoch + 1,
         instance = EXCLUDED.instance, renewed_at = now()
       WHERE relay_holder.renewed_at < now() - make_interval(secs => $2::float8 / 1000)
       RETURNING epoch::text`,
      [instance, leaseMs],
    );
    return rows[0]?.epoch;
  };
  const holder = async (): Promise<{ instance: string; epoch: string; age: number }> => {
    const { rows } = await pool.query<{ instance: string; epoch: string; age: number }>(
      `SELECT instance, epoch::text,
         (extract(epoch FROM now() - renewed_at) * 1000)::float8 AS age
       FROM relay_holder WHERE id = 1`,
    );
    return rows[0] ?? { instance: "", epoch: "", age: Infinity };
  };
  const first = await take();
  if (first !== undefined) return first;
  const seen = await holder();
  log.warn(
    { holder: seen.instance, leaseMs },
    "the database is held by relay %s: waiting one lease to see whether it is alive",
    seen.instance,
  );
  await sleep(Math.max(0, leaseMs - seen.age) + Math.min(leaseMs, 250));
  const now = await holder();
  const renewed = now.epoch !== seen.epoch || now.age < seen.age;
  const epoch = renewed ? undefined : await take();
  if (epoch !== undefined) {
    log.warn(
      { holder: seen.instance },
      "relay %s stopped renewing its lease: took over",
      seen.instance,
    );
    return epoch;
  }
  throw new UserError(
    "database_held",
    `another relay (${now.instance}) holds this database and renews its lease: one relay per --database for now (jobs are kept in the holder's memory, not shared); stop that relay, or give this one its own database`,
  );
}

/**
 * Opens the store on `pool`: migrates the schema (once, under the advisory lock, when relays
 * start together), takes the holder row, and starts renewing its lease. The pool stays the
 * caller's; `close()` gives the holder row up.
 * @example
 * const store = await openPgStore(pool, { log, resultsDir: join(dataDir, "results") });
 * const records = await store.load();
 */
export async function openPgStore(pool: pg.Pool, o: PgStoreOptions): Promise<JobStore> {
  const { log, resultsDir } = o;
  const leaseMs = o.leaseMs ?? DEFAULT_LEASE_MS;
  const instance = o.instance ?? `${hostname()}:${process.pid}:${randomBytes(4).toString("hex")}`;
  const max = Math.max(1, o.maxWritesPerCommit ?? 1024);
  await mkdir(resultsDir, { recursive: true, mode: 0o700 });
  await migrate(pool, "jobs", PG_JOB_MIGRATIONS);
  const owner = o.owner ?? null;
  // Instances of a club share the tables: no one holds them (`FENCE` then renews nothing).
  const epoch = owner === null ? await takeHolder(pool, instance, leaseMs, log) : "";
  if (owner === null) log.info({ instance, epoch }, "holding the database as relay %s", instance);

  const pending: Pending[] = [];
  let writing: Promise<void> | undefined;
  let closed = false;
  let fenced = false;
  /** Bodies saved but not committed yet: an attempt may ask for one before its commit. */
  const unsaved = new Map<string, Buffer>();

  const apply = async (client: pg.PoolClient, op: Op): Promise<void> => {
    switch (op.kind) {
      case "dropBody":
        await client.query("DELETE FROM job_bodies WHERE id = $1", [op.id]);
        return;
      case "remove": {
        // An instance removes only what it still owns (a lone relay, fenced by its row, all).
        const mine = owner === null ? "" : " AND owner = $2";
        const deleted = await client.query<{ id: string }>(
          `WITH j AS (DELETE FROM jobs WHERE id = $1${mine} RETURNING id),
             b AS (DELETE FROM batches WHERE id = $1${mine} RETURNING id),
             r AS (DELETE FROM runs WHERE id = $1${mine} RETURNING id)
           SELECT id FROM j UNION ALL SELECT id FROM b UNION ALL SELECT id FROM r`,
          owner === null ? [op.id] : [op.id, owner],
        );
        if (owner === null || deleted.rowCount !== 0)
          await client.query(
            `WITH x AS (DELETE FROM job_results WHERE id = $1) DELETE FROM job_bodies WHERE id = $1`,
            [op.id],
          );
        return;
      }
      case "pruneUsage":
        await client.query("DELETE FROM usage WHERE day < $1", [op.beforeDay]);
        return;
      case "usage": {
        const cols = [...USAGE_KEY, ...USAGE_COUNTERS];
        const sql = `INSERT INTO usage (${cols.join(", ")})
          VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})
          ON CONFLICT (${USAGE_KEY.join(", ")}) DO UPDATE SET
          ${USAGE_COUNTERS.map((c) => `${c} = usage.${c} + EXCLUDED.${c}`).join(", ")}`;
        for (const row of op.rows)
          await client.query(
            sql,
            cols.map((c) => row[c]),
          );
        return;
      }
      case "save": {
        const r = op.record as StoredRecord & Partial<JobRecord>;
        const table = TABLES[r.kind];
        if (table === undefined)
          throw new StoreError("store_failed", `no table for kind "${r.kind}"`);
        const cols = [...COLUMNS, ...(table === "jobs" ? ["result_file"] : []), "owner", "data"];
        const values: unknown[] = [
          r.id,
          r.member,
          r.seq,
          r.created,
          r.status ?? null,
          r.finished ?? null,
          r.idempotency_key ?? null,
          ...(table === "jobs" ? [r.result?.kind === "file" ? r.id : null] : []),
          owner,
          JSON.stringify(r),
        ];
        const sets = cols.filter((c) => c !== "id").map((c) => `${c} = EXCLUDED.${c}`);
        // An instance writes only what it still owns; a lone relay, fenced by its holder row, all.
        const mine = owner === null ? "" : ` WHERE ${table}.owner = EXCLUDED.owner`;
        const saved = await client.query(
          `INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(", ")})
           ON CONFLICT (id) DO UPDATE SET ${sets.join(", ")}${mine}`,
          values,
        );
        if (saved.rowCount === 0 && owner !== null) throw new OwnerChanged(r.id, owner);
        if (op.body)
          await client.query(
            `INSERT INTO job_bodies (id, member, bytes, body) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO NOTHING`,
            [r.id, r.member, op.body.length, op.body],
          );
        return;
      }
    }
  };

  /**
   * One transaction: the lease renewed (only while this relay's epoch holds), every op applied,
   * COMMIT, then acknowledged. A refused statement (a constraint) fails only its own write: the
   * group is then written again with a savepoint around each.
   */
  const commitGroup = async (group: Pending[], careful = false): Promise<void> => {
    const failed = new Map<Pending, Error>();
    let client: pg.PoolClient | undefined;
    let broken: Error | undefined;
    try {
      if (fenced) throw fencedError(instance);
      client = await pool.connect();
      await client.query("BEGIN");
      const fence = owner === null ? await client.query(FENCE, [epoch]) : { rowCount: 1 };
      if (fence.rowCount === 0) {
        fenced = true;
        throw fencedError(instance);
      }
      const written = new Set<StoredRecord>();
      for (const p of group) {
        // A record saved twice in one transaction is written once, as it is now.
        if (p.op.kind === "save" && !p.op.body && written.has(p.op.record)) continue;
        if (careful) await client.query("SAVEPOINT op");
        try {
          await apply(client, p.op);
          if (careful) await client.query("RELEASE SAVEPOINT op");
        } catch (err) {
          if (!careful || !isConstraint(err)) throw err;
          await client.query("ROLLBACK TO SAVEPOINT op");
          failed.set(p, pgStoreError(err));
          continue;
        }
        if (p.op.kind === "save") written.add(p.op.record);
        else if (p.op.kind === "remove") written.clear();
      }
      await client.query("COMMIT");
    } catch (err) {
      if (client) await client.query("ROLLBACK").catch(() => undefined);
      if (!careful && isConstraint(err)) {
        client?.release();
        await commitGroup(group, true);
        return;
      }
      if (!(err instanceof StoreError) && !isConstraint(err)) broken = err as Error;
      const e = pgStoreError(err);
      if (!fenced) log.warn({ err: describeError(err) }, "a write to the database failed");
      for (const p of group) failed.set(p, e);
    }
    // A connection that failed is not given back to the pool: the next write opens a new one.
    client?.release(broken);
    for (const p of group) {
      if (p.op.kind === "save" && p.op.body) unsaved.delete(p.op.record.id);
      p.done(failed.get(p));
    }
  };

  const drain = async (): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
    while (pending.length > 0) {
      const group = pending.splice(0, max);
      await commitGroup(group);
    }
    writing = undefined;
  };

  const enqueue = (op: Op): Promise<void> =>
    queueWrite(pending, closed, op, () => (writing ??= drain()));

  // The lease is renewed by every commit and, when there are none, by this timer.
  const renew = setInterval(
    () => {
      if (fenced || writing || owner !== null) return;
      pool.query(FENCE, [epoch]).then(
        (r) => {
          if (r.rowCount === 0 && !fenced) {
            fenced = true;
            log.error(
              { instance },
              "another relay took over the database: this relay's writes now fail; restart it",
            );
          }
        },
        (err: unknown) =>
          log.warn({ err: describeError(err) }, "renewing the database lease failed; retrying"),
      );
    },
    Math.max(1, Math.floor(leaseMs / 3)),
  );
  renew.unref();

  const load = async (): Promise<StoredRecord[]> => {
    const records: StoredRecord[] = [];
    for (const [kind, table] of Object.entries(TABLES)) {
      const { rows } = await pool.query<{ id: string; data: string }>(
        `SELECT id, data FROM ${table} WHERE $1::text IS NULL OR owner = $1 ORDER BY seq`,
        [owner],
      );
      for (const row of rows) {
        const record = checkRecord(kind, row.id, row.data);
        if (typeof record === "string")
          log.warn({ id: row.id, table }, "skipping stored %s %s: %s", kind, row.id, record);
        else records.push(record);
      }
    }
    return records;
  };

  const readUsage = async (q: UsageQuery): Promise<UsageRow[]> => {
    const by = "member" in q ? "member" : "owner";
    const params: unknown[] = ["member" in q ? q.member : q.owner, q.sinceDay];
    if (q.model !== undefined) params.push(q.model);
    const counters = USAGE_COUNTERS.map((c) => `${c}::float8 AS ${c}`);
    const { rows } = await pool
      .query<UsageRow>(
        `SELECT ${[...USAGE_KEY, ...counters].join(", ")} FROM usage
         WHERE ${by} = $1 AND day >= $2${q.model === undefined ? "" : " AND model = $3"}
         ORDER BY day DESC, model, provider, member`,
        params,
      )
      .catch((err: unknown) => {
        throw pgStoreError(err);
      });
    return rows;
  };

  return {
    resultsDir,
    load,
    save(record, body) {
      if (body) unsaved.set(record.id, body);
      return enqueue({ kind: "save", record, body });
    },
    async body(id) {
      const waiting = unsaved.get(id);
      if (waiting) return waiting;
      const { rows } = await pool
        .query<{ body: Buffer }>("SELECT body FROM job_bodies WHERE id = $1", [id])
        .catch((err: unknown) => {
          throw pgStoreError(err);
        });
      return rows[0]?.body;
    },
    dropBody: (id) => enqueue({ kind: "dropBody", id }),
    remove: (id) => enqueue({ kind: "remove", id }),
    addUsage: (rows) => enqueue({ kind: "usage", rows }),
    readUsage,
    pruneUsage: (beforeDay) => enqueue({ kind: "pruneUsage", beforeDay }),
    async close() {
      clearInterval(renew);
      while (writing) await writing;
      closed = true;
      // Give the database up at once, so the next relay need not wait for the lease.
      if (!fenced && owner === null)
        await pool
          .query("UPDATE relay_holder SET renewed_at = '-infinity' WHERE id = 1 AND epoch = $1", [
            epoch,
          ])
          .catch((err: unknown) =>
            log.warn({ err: describeError(err) }, "giving the database up failed"),
          );
    },
  };
}
