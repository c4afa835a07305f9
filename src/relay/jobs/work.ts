/**
 * The relay's long-running work, put together: the store (SQLite under the data directory, or
 * memory), the job queue, batches and workflow runs, loaded and resumed at start, with the
 * routes the public API hands them. `createRelay` makes one; `close()` saves and lets go.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type pg from "pg";
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import type { Endpoint } from "../../protocol/index.ts";
import type { Registry } from "../registry.ts";
import { DEFAULT_MAX_JSON_BYTES } from "../uploads.ts";
import { workflowRoutes } from "../workflows/routes.ts";
import { Workflows } from "../workflows/runs.ts";
import type { RunRecord } from "../workflows/types.ts";
import { Batches } from "./batches.ts";
import { REPLAYED, baseUrl, idempotencyKey, storeRefusal } from "./http.ts";
import { decodePart } from "../target.ts";
import { JobSystem } from "./jobs.ts";
import { createMemoryStore } from "./memory-store.ts";
import { sweepResults } from "./results.ts";
import { pruneJobs } from "./retention.ts";
import { routeTable, type Elsewhere } from "./route-table.ts";
import { batchRoutes, jobRoutes, submitAsync, type JobRouteContext } from "./routes.ts";
import {
  DEFAULT_LIMITS,
  type BatchRecord,
  type JobLimits,
  type JobRecord,
  type StoredRecord,
} from "./types.ts";
import { openSqliteStore } from "./sqlite-store.ts";
import { StoreError, type JobStore } from "./store.ts";
import { openPgStore } from "../pg/store.ts";
import { UsageBook } from "../usage-book.ts";
import { forwardWork, type SharedWork, type WorkKind } from "../cluster/work.ts";
import type { Peers } from "../cluster/remote.ts";
import { sendJson } from "../../http/respond.ts";
import { jobView } from "./view.ts";

/** What `createWork` needs. */
export interface WorkOptions {
  registry: Registry;
  log: Logger;
  /** Where jobs and results are kept; without it they live in memory and die with the relay. */
  dataDir?: string;
  /**
   * The relay's PostgreSQL pool (`--database`): jobs, batches, runs, their bodies and usage are
   * kept there instead; byte results and the media library stay under `dataDir` (a temporary
   * directory, removed at close, without one).
   */
  pool?: pg.Pool;
  /** The lease of the relay holding the database (default 15 s; see `pg/store.ts`). */
  instanceLeaseMs?: number;
  /**
   * This relay is an instance of a club sharing `pool`'s tables with others: it owns what it
   * was sent, reaches the others' records through them, and takes over a dead one's.
   */
  shared?: {
    work: SharedWork;
    peers: Peers;
    /** Subscribes to other instances leaving the club. */
    onInstanceGone(listener: () => void): unknown;
    /** Subscribes to this instance finding that the others expired it. */
    onExpired(listener: () => void): unknown;
  };
  limits?: Partial<JobLimits>;
  /** Largest JSON body of a batch or run submission. */
  maxJsonBytes?: number;
}

/** The long-running work as the public API uses it. */
export interface Work {
  /**
   * Answers a request under `/v1/jobs`, `/v1/batches` or `/v1/workflows`; on an instance of a
   * club, one for a record another instance keeps is passed to it (unless it came `fromPeer`).
   */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    member: string,
    url: URL,
    how?: { fromPeer?: boolean },
  ): Promise<void>;
  /** Answers a JSON inference request that asked for `"async": true` with 202 and its job. */
  submit(
    req: IncomingMessage,
    res: ServerResponse,
    member: string,
    endpoint: Endpoint,
    json: Record<string, unknown>,
  ): Promise<void>;
  /** What each member used, for `GET /v1/usage` and the meters of synchronous requests. */
  usage: UsageBook;
  /**
   * Calls `listener` with the member whenever one of their jobs, batches or runs was saved
   * (created, or its status or progress changed); returns the unsubscribe. The club's page
   * streams these (`ui-events.ts`).
   */
  onChange(listener: (member: string) => void): () => void;
  /** The job database, where there is one (the media library's index lives there too). */
  readonly database?: import("node:sqlite").DatabaseSync;
  close(): Promise<void>;
}

const PRUNE_EVERY_MS = 3_600_000;
/** How often an instance of a club looks for work a dead instance left (besides on notice). */
const CLAIM_EVERY_MS = 30_000;

/**
 * The store `o` asks for: PostgreSQL with a pool, else SQLite under `dataDir`, else memory.
 * On PostgreSQL the media library's index still lives in `<dataDir>/jobs.db` (`database`),
 * whose job tables then stay unused.
 */
async function openStore(
  o: WorkOptions,
  limits: JobLimits,
): Promise<{
  store: JobStore;
  database?: import("node:sqlite").DatabaseSync;
  closeAlso: () => Promise<void>;
}> {
  const { log, pool, dataDir } = o;
  const sqlite = (dir: string): Promise<JobStore> =>
    openSqliteStore(dir, { log, maxWritesPerCommit: limits.maxWritesPerCommit });
  if (!pool) {
    const store = dataDir ? await sqlite(dataDir) : await createMemoryStore();
    return {
      store,
      ...(store.database ? { database: store.database } : {}),
      closeAlso: () => Promise.resolve(),
    };
  }
  const local = dataDir ? await sqlite(dataDir) : undefined;
  const resultsDir = dataDir
    ? join(dataDir, "results")
    : await mkdtemp(join(tmpdir(), "club-relay-results-"));
  const closeAlso = async (): Promise<void> => {
    await local?.close();
    if (!dataDir) await rm(resultsDir, { recursive: true, force: true });
  };
  try {
    const left = local ? (await local.load()).length : 0;
    if (left > 0)
      log.warn(
        { dataDir, records: left },
        "%d job(s), batch(es) or run(s) in %s/jobs.db are not served: this relay keeps them in PostgreSQL (--database)",
        left,
        dataDir,
      );
    const store = await openPgStore(pool, {
      log,
      resultsDir,
      maxWritesPerCommit: limits.maxWritesPerCommit,
      ...(o.instanceLeaseMs === undefined ? {} : { leaseMs: o.instanceLeaseMs }),
      ...(o.shared ? { owner: o.shared.work.instanceId } : {}),
    });
    return { store, ...(local?.database ? { database: local.database } : {}), closeAlso };
  } catch (err) {
    await closeAlso();
    throw err;
  }
}

const of =
  <T extends StoredRecord>(kind: T["kind"]) =>
  (records: StoredRecord[]): T[] =>
    records.filter((r): r is T => r.kind === kind);

/**
 * Opens the store, loads what it holds (jobs that were running are queued again) and starts
 * the dispatcher.
 * @example
 * const work = await createWork({ registry, log, dataDir: "/var/lib/club-provider/relay" });
 */
export async function createWork(o: WorkOptions): Promise<Work> {
  const { registry, log } = o;
  const limits: JobLimits = { ...DEFAULT_LIMITS, ...o.limits };
  const { store, database, closeAlso } = await openStore(o, limits);
  const listeners = new Set<(member: string) => void>();
  // Every change of a job, batch or run is saved: a saved record is the moment to tell.
  const save = store.save.bind(store);
  store.save = async (record, body) => {
    await save(record, body);
    for (const listener of listeners) listener(record.member);
  };
  const records = await store.load();
  const usage = new UsageBook({
    store,
    log,
    flushMs: limits.usageFlushMs,
    retainDays: limits.usageRetainDays,
  });
  void usage.prune();
  const shared = o.shared;
  const jobs = new JobSystem({
    store,
    registry,
    limits,
    log,
    usage,
    ...(shared ? { shared: shared.work } : {}),
  });
  const batches = new Batches(jobs, store, limits, log);
  const workflows = new Workflows(jobs, store, registry, limits, log);
  const loaded = of<JobRecord>("job")(records);
  const requeued = loaded.filter((j) => j.status === "PROCESSING").length;
  const files = new Set(loaded.filter((j) => j.result?.kind === "file").map((j) => j.id));
  const swept = await sweepResults(store.resultsDir, files);
  if (swept > 0) log.info({ swept }, "removed %d result file(s) no stored job points at", swept);
  jobs.load(loaded);
  batches.load(of<BatchRecord>("batch")(records));
  workflows.load(of<RunRecord>("run")(records));

  // What instances that died left: claimed now, whenever one leaves, and every half minute
  // (an instance that died while no other was running is found by the next to start).
  let claiming: Promise<void> | undefined;
  const adopt = async (): Promise<void> => {
    if (!shared) return;
    const claimed = await shared.work.claimOrphans();
    const orphans = of<JobRecord>("job")(claimed);
    for (const job of orphans)
      if (job.result?.kind === "file") {
        const path = join(store.resultsDir, job.id);
        if (!(await shared.work.fetchResult(job.id, path))) {
          log.warn({ job: job.id }, "the result of job %s was not in the database", job.id);
          delete job.result;
        }
      }
    jobs.load(orphans, "crash");
    batches.load(of<BatchRecord>("batch")(claimed));
    workflows.load(of<RunRecord>("run")(claimed));
  };
  const claim = (): Promise<void> =>
    (claiming ??= adopt()
      .catch((err: unknown) =>
        log.warn({ err: describeError(err) }, "taking over a dead instance's work failed"),
      )
      .finally(() => (claiming = undefined)));
  // Expired by the others while cut off, this instance lets go of what they took over.
  const release = async (): Promise<void> => {
    if (!shared) return;
    const [j, b, r] = await Promise.all([
      shared.work.stillMine("job", jobs.ids()),
      shared.work.stillMine("batch", batches.ids()),
      shared.work.stillMine("run", workflows.ids()),
    ]);
    const lost = (ids: string[], mine: Set<string>) => new Set(ids.filter((id) => !mine.has(id)));
    const gone = {
      jobs: lost(jobs.ids(), j),
      batches: lost(batches.ids(), b),
      runs: lost(workflows.ids(), r),
    };
    const count = gone.jobs.size + gone.batches.size + gone.runs.size;
    if (count > 0)
      log.warn(
        { records: count },
        "let go of %d record(s) another instance took over while this one was cut off",
        count,
      );
    workflows.release(gone.runs);
    batches.release(gone.batches);
    jobs.release(gone.jobs);
  };
  if (shared) {
    await claim();
    shared.onInstanceGone(() => void claim());
    shared.onExpired(() => {
      release().catch((err: unknown) =>
        log.warn(
          { err: describeError(err) },
          "checking which records are still this instance's failed",
        ),
      );
    });
  }
  log.info(
    { dataDir: o.dataDir ?? null, jobs: loaded.length, requeued, records: records.length },
    "job store %s: %d job(s), %d queued again",
    o.pool ? "in PostgreSQL" : (o.dataDir ?? "in memory"),
    loaded.length,
    requeued,
  );

  const prune = (): void => {
    const now = Date.now();
    Promise.all([pruneJobs(jobs, now, limits), batches.prune(now), workflows.prune(now)]).catch(
      (err: unknown) => log.error({ err: describeError(err) }, "pruning old jobs failed"),
    );
  };
  prune();
  const timers = [
    setInterval(() => jobs.kick(), limits.tickMs),
    setInterval(prune, PRUNE_EVERY_MS),
    ...(shared ? [setInterval(() => void claim(), CLAIM_EVERY_MS)] : []),
  ];
  for (const t of timers) t.unref();

  const maxJsonBytes = o.maxJsonBytes ?? DEFAULT_MAX_JSON_BYTES;
  const ctx: JobRouteContext = {
    jobs,
    batches,
    resultsDir: store.resultsDir,
    limits,
    maxJsonBytes,
  };
  // The whole work API in one table, matched once per request (`api.ts` sends only
  // `/v1/jobs…`, `/v1/batches…` and `/v1/workflows…` here).
  const routes = routeTable([
    ...jobRoutes(ctx),
    ...batchRoutes(ctx),
    ...workflowRoutes(workflows, maxJsonBytes),
  ]);
  // A store that failed is logged here and answered by the API as 503/507 (`storeRefusal`).
  const answer = async (run: () => Promise<void>): Promise<void> => {
    try {
      await run();
    } catch (err) {
      if (!(err instanceof StoreError)) throw err;
      log.error({ err: describeError(err) }, "a write to the job store failed");
      throw storeRefusal(err);
    }
  };

  /** A work path's area (`jobs`, `batches`, `workflows`) and its decoded segments after it. */
  const workPath = (url: URL): { area: string; parts: string[] } => {
    const [, , area = "", ...rest] = url.pathname.split("/");
    // A malformed escape stays as it is, and matches nothing.
    return { area, parts: rest.filter((p) => p !== "").map((p) => decodePart(p) ?? p) };
  };
  /** Whether a work path is one of the three lists. */
  const isList = (area: string, parts: string[]): boolean =>
    area === "jobs" || area === "batches"
      ? parts.length === 0
      : parts.length === 1 && parts[0] === "runs";
  /** The member's records other instances keep (the lists add them). */
  const theirs = async (member: string): Promise<Elsewhere> => {
    if (!shared) return { jobs: [], batches: [], runs: [] };
    const [j, b, r] = await Promise.all(
      (["job", "batch", "run"] as const).map((kind) => shared.work.others(kind, member)),
    );
    return {
      jobs: of<JobRecord>("job")(j ?? []),
      batches: of<BatchRecord>("batch")(b ?? []),
      runs: of<RunRecord>("run")(r ?? []),
    };
  };
  /** The record a work path is about, when it names one: its kind and id. */
  const recordOf = (area: string, parts: string[]): { kind: WorkKind; id: string } | undefined => {
    if (area === "jobs" && parts[0]) return { kind: "job", id: parts[0] };
    if (area === "batches" && parts[0]) return { kind: "batch", id: parts[0] };
    if (area === "workflows" && parts[0] === "runs" && parts[1])
      return { kind: "run", id: parts[1] };
    return undefined;
  };
  const held = (kind: WorkKind, member: string, id: string): boolean =>
    (kind === "job"
      ? jobs.get(member, id)
      : kind === "batch"
        ? batches.get(member, id)
        : workflows.get(member, id)) !== undefined;
  /**
   * On an instance of a club, before a request is routed here: a record another live instance
   * keeps is answered there (true); one a dead instance left is claimed first. A submission
   * counts the member's jobs the other instances hold.
   */
  const elsewhere = async (
    req: IncomingMessage,
    res: ServerResponse,
    member: string,
    record: { kind: WorkKind; id: string } | undefined,
  ): Promise<boolean> => {
    if (!shared) return false;
    if (req.method === "POST") jobs.noteElsewhere(member, await shared.work.elsewhere(member));
    if (!record || held(record.kind, member, record.id)) return false;
    const where = await shared.work.locate(record.kind, record.id, member);
    if (!where?.owner || where.owner === shared.work.instanceId) return false;
    if (where.url) {
      await forwardWork(shared.peers, { owner: where.owner, url: where.url }, req, res, member);
      return true;
    }
    await claim();
    return false;
  };

  return {
    ...(database ? { database } : {}),
    handle(req, res, member, url, how = {}) {
      return answer(async () => {
        // Only an instance of a club reads the path here (the route table reads it again).
        if (shared) {
          const { area, parts } = workPath(url);
          if (!how.fromPeer && (await elsewhere(req, res, member, recordOf(area, parts)))) return;
          if (req.method === "GET" && isList(area, parts))
            return routes({ req, res, member, url, elsewhere: await theirs(member) });
        }
        await routes({ req, res, member, url });
      });
    },
    submit(req, res, member, endpoint, json) {
      return answer(async () => {
        await elsewhere(req, res, member, undefined);
        // A key already used at another instance gets that instance's job, as here.
        const key = shared && idempotencyKey(req);
        if (shared && key !== undefined && !jobs.replay(member, key)) {
          const known = await shared.work.byKey("job", member, key);
          if (known?.kind === "job")
            return sendJson(res, 202, jobView(known as JobRecord, baseUrl(req)), REPLAYED);
        }
        await submitAsync(ctx, req, res, member, endpoint, json);
      });
    },
    usage,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      for (const t of timers) clearInterval(t);
      await jobs.close();
      await usage.close();
      await store.close();
      await closeAlso();
    },
  };
}
