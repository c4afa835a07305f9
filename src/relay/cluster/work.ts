/**
 * Jobs, batches and workflow runs across the instances of a club. Every record lives in the
 * shared tables of `pg/store.ts` with an `owner`: the instance that took the submission keeps it
 * in memory and runs it (on a provider of any instance; `jobs/capacity.ts`). What arrives at
 * another instance for that record (a read, a cancel, a result, a gate decision) is passed to
 * the owner over the internal link (`forwardWork`) and answered there, exactly as on one relay.
 *
 * An instance that dies leaves its records owned by a name no longer in `cluster_instances`.
 * The first live instance to notice claims all of them at once (`claimOrphans`: one
 * transaction per dead owner under a try-lock, so two survivors never split a batch from its
 * jobs), loads them as a restarted relay loads its own, and runs what was queued or running; the
 * interrupted attempt counts. Byte results are copied into `job_results` before a job is saved
 * PROCESSED, so the claimant gets them too.
 */
import { createWriteStream } from "node:fs";
import { rename, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import type http2 from "node:http2";
import { once } from "node:events";
import type pg from "pg";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import { HttpError } from "../../http/error.ts";
import { resetStream } from "../../transport/h2-stream.ts";
import { checkRecord } from "../jobs/record-shape.ts";
import type { StoredRecord } from "../jobs/types.ts";
import { pgStoreError } from "../pg/store.ts";
import { inTransaction } from "../pg/transaction.ts";
import { readChunk, writeChunks } from "../pg/chunks.ts";
import type { Peers } from "./remote.ts";

/** The kinds of shared records and their tables. */
export type WorkKind = "job" | "batch" | "run";
const TABLES: Record<WorkKind, string> = { job: "jobs", batch: "batches", run: "runs" };

/** Most records of one kind a list reads from the other instances. */
export const MAX_ELSEWHERE = 10_000;

/** The header that names the member an internal work request is for. */
export const HEADER_WORK_MEMBER = "x-club-work-member";

/** How many of a member's jobs other instances keep: queued or running, and in all. */
export interface JobsElsewhere {
  active: number;
  stored: number;
}

/** Where a record is kept: its owner, and the owner's internal URL while it is a live instance. */
export interface Location {
  owner: string | null;
  url: string | undefined;
}

/** The shared tables as the work of one instance reads them; see the file comment. */
export class SharedWork {
  readonly instanceId: string;
  readonly #pool: pg.Pool;
  readonly #log: Logger;

  constructor(pool: pg.Pool, instanceId: string, log: Logger) {
    this.#pool = pool;
    this.instanceId = instanceId;
    this.#log = log.child({ component: "cluster-work" });
  }

  /** The member's record `id` of `kind`: who owns it and where that instance listens. */
  async locate(kind: WorkKind, id: string, member: string): Promise<Location | undefined> {
    const { rows } = await this.#query<{ owner: string | null; url: string | null }>(
      `SELECT w.owner, i.url FROM ${TABLES[kind]} w
         LEFT JOIN cluster_instances i ON i.id = w.owner
        WHERE w.id = $1 AND w.member = $2`,
      [id, member],
    );
    const row = rows[0];
    return row && { owner: row.owner, url: row.url ?? undefined };
  }

  /** The member's record submitted with an idempotency key, wherever it is kept. */
  async byKey(kind: WorkKind, member: string, key: string): Promise<StoredRecord | undefined> {
    const { rows } = await this.#query<{ id: string; data: string }>(
      `SELECT id, data FROM ${TABLES[kind]} WHERE member = $1 AND idempotency_key = $2`,
      [member, key],
    );
    const row = rows[0];
    return row ? this.#parse(kind, row) : undefined;
  }

  /**
   * The member's records of `kind` that other instances keep, oldest first: at most
   * `MAX_ELSEWHERE`, the newest (each instance keeps at most `maxStoredPerMember` of them).
   */
  async others(kind: WorkKind, member: string): Promise<StoredRecord[]> {
    const { rows } = await this.#query<{ id: string; data: string }>(
      `SELECT id, data FROM (
         SELECT id, data, seq FROM ${TABLES[kind]}
          WHERE member = $1 AND owner IS DISTINCT FROM $2 ORDER BY seq DESC LIMIT $3) newest
        ORDER BY seq`,
      [member, this.instanceId, MAX_ELSEWHERE],
    );
    return rows.flatMap((row) => this.#parse(kind, row) ?? []);
  }

  /** Which of `ids` (records of `kind`) this instance still owns. */
  async stillMine(kind: WorkKind, ids: string[]): Promise<Set<string>> {
    const { rows } = await this.#query<{ id: string }>(
      `SELECT id FROM ${TABLES[kind]} WHERE id = ANY($1::text[]) AND owner = $2`,
      [ids, this.instanceId],
    );
    return new Set(rows.map((r) => r.id));
  }

  /**
   * The member's jobs on other instances: queued or running, and stored at all (their room and
   * their store are the club's).
   */
  async elsewhere(member: string): Promise<JobsElsewhere> {
    const { rows } = await this.#query<JobsElsewhere>(
      `SELECT count(*) FILTER (WHERE status IN ('QUEUED', 'PROCESSING'))::int AS active,
              count(*)::int AS stored
         FROM jobs WHERE member = $1 AND owner IS DISTINCT FROM $2`,
      [member, this.instanceId],
    );
    return rows[0] ?? { active: 0, stored: 0 };
  }

  /**
   * Claims the records of every owner that is no longer a live instance: each dead owner's
   * records move to this instance in one transaction, under a try-lock on that owner, so an
   * instance racing for the same owner skips it. Returns the records claimed.
   */
  async claimOrphans(): Promise<StoredRecord[]> {
    const { rows: dead } = await this.#query<{ owner: string }>(
      `SELECT DISTINCT owner FROM (
         SELECT owner FROM jobs WHERE owner IS NOT NULL
         UNION SELECT owner FROM batches WHERE owner IS NOT NULL
         UNION SELECT owner FROM runs WHERE owner IS NOT NULL) o
        WHERE NOT EXISTS (SELECT 1 FROM cluster_instances i WHERE i.id = o.owner)`,
    );
    const claimed: StoredRecord[] = [];
    for (const { owner } of dead) {
      try {
        const mine = await inTransaction(this.#pool, async (client) => {
          const { rows } = await client.query<{ got: boolean }>(
            "SELECT pg_try_advisory_xact_lock(hashtext('club-claim'), hashtext($1)) AS got",
            [owner],
          );
          // Another instance is claiming this owner's records now.
          if (!rows[0]?.got) return [];
          const moved: StoredRecord[] = [];
          for (const kind of ["job", "batch", "run"] as const) {
            const { rows: taken } = await client.query<{ id: string; data: string }>(
              `UPDATE ${TABLES[kind]} SET owner = $2 WHERE owner = $1 RETURNING id, data, seq`,
              [owner, this.instanceId],
            );
            for (const row of taken) {
              const record = this.#parse(kind, row);
              if (record) moved.push(record);
            }
          }
          return moved;
        });
        if (mine.length > 0)
          this.#log.warn(
            { from: owner, records: mine.length },
            "took over %d job(s), batch(es) or run(s) of instance %s, which left the club",
            mine.length,
            owner,
          );
        claimed.push(...mine);
      } catch (err) {
        this.#log.warn({ err: describeError(err), from: owner }, "claiming orphaned work failed");
      }
    }
    return claimed;
  }

  /**
   * Copies a committed byte result into `job_results`, replacing any earlier copy, in one
   * transaction: the job is saved PROCESSED only after this resolves.
   */
  async keepResult(id: string, path: string): Promise<void> {
    await inTransaction(this.#pool, async (client) => {
      await writeChunks(client, "job_results", id, path);
    });
  }

  /**
   * Writes the stored copy of a job's byte result to `path` (through a `.part` file, one chunk
   * in memory at a time). False when none is stored.
   */
  async fetchResult(id: string, path: string): Promise<boolean> {
    const part = `${path}.fetch`;
    const out = createWriteStream(part, { mode: 0o600 });
    let seq = 0;
    try {
      for (;;) {
        const chunk = await readChunk(this.#pool, "job_results", id, seq);
        if (!chunk) break;
        seq++;
        if (!out.write(chunk)) await once(out, "drain");
      }
      out.end();
      await once(out, "finish");
      if (seq === 0) {
        await rm(part, { force: true });
        return false;
      }
      await rename(part, path);
      return true;
    } catch (err) {
      out.destroy();
      await rm(part, { force: true });
      throw err;
    }
  }

  /** Forgets a job's stored result (a retry runs it again). */
  async dropResult(id: string): Promise<void> {
    await this.#query("DELETE FROM job_results WHERE id = $1", [id]);
  }

  #parse(kind: WorkKind, row: { id: string; data: string }): StoredRecord | undefined {
    const record = checkRecord(kind, row.id, row.data);
    if (typeof record !== "string") return record;
    this.#log.warn({ id: row.id, kind }, "skipping stored %s %s: %s", kind, row.id, record);
    return undefined;
  }

  async #query<R extends pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.#pool.query<R>(sql, params);
    } catch (err) {
      throw pgStoreError(err);
    }
  }
}

/** The request headers a work request takes to its owner: the member's, less hop ones. */
const PASSED = ["content-type", "content-length", "idempotency-key", "accept", "x-forwarded-proto"];

/**
 * Answers a member's work request at the instance that owns its record: the request goes over
 * the internal link as it came (method, path, headers that matter, body), and the owner's answer
 * comes back as it is. A consumer who leaves resets the stream; an owner that cannot be reached
 * before answering gives 502 in the envelope.
 */
export async function forwardWork(
  peers: Peers,
  target: { owner: string; url: string },
  req: IncomingMessage,
  res: ServerResponse,
  member: string,
): Promise<void> {
  const headers: http2.OutgoingHttpHeaders = {
    ":method": req.method ?? "GET",
    ":path": req.url ?? "/",
    [HEADER_WORK_MEMBER]: member,
    // The owner builds its URLs from the host the member asked.
    host: req.headers.host ?? "127.0.0.1",
  };
  for (const name of PASSED) {
    const value = req.headers[name];
    if (value !== undefined) headers[name] = value;
  }
  const bodyless = req.method === "GET" || req.method === "HEAD";
  const up = peers.open(target.url, headers, bodyless);
  up.on("error", () => undefined); // seen as no response, or a cut answer
  if (bodyless) req.resume();
  else req.pipe(up);
  const left = (): void => resetStream(up);
  res.on("close", left);
  try {
    const answer = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      up.once("response", resolve);
      up.once("error", reject);
      up.once("close", () => reject(new Error(`the stream closed (code ${up.rstCode})`)));
    });
    const { ":status": status, ...rest } = answer;
    res.writeHead(Number(status), rest as Record<string, string | string[]>);
    up.pipe(res);
    await once(up, "close");
    if (!up.readableEnded && !res.writableEnded) res.destroy();
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    throw new HttpError(
      502,
      "upstream_error",
      `the relay instance ${target.owner} that keeps this record could not be reached (${describeError(err)}); try again`,
      { cause: err },
    );
  } finally {
    res.off("close", left);
  }
}
