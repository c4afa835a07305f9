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
import { storeRefusal } from "./http.ts";
import { JobSystem } from "./jobs.ts";
import { createMemoryStore } from "./memory-store.ts";
import { sweepResults } from "./results.ts";
import { pruneJobs } from "./retention.ts";
import { routeTable } from "./route-table.ts";
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
  limits?: Partial<JobLimits>;
  /** Largest JSON body of a batch or run submission. */
  maxJsonBytes?: number;
}

/** The long-running work as the public API uses it. */
export interface Work {
  /** Answers a request under `/v1/jobs`, `/v1/batches` or `/v1/workflows`. */
  handle(req: IncomingMessage, res: ServerResponse, member: string, url: URL): Promise<void>;
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
  const jobs = new JobSystem({ store, registry, limits, log, usage });
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

  return {
    ...(database ? { database } : {}),
    handle(req, res, member, url) {
      return answer(() => routes({ req, res, member, url }));
    },
    submit(req, res, member, endpoint, json) {
      return answer(() => submitAsync(ctx, req, res, member, endpoint, json));
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
