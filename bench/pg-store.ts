/**
 * The job store on PostgreSQL against SQLite, store to store (no HTTP): 4 000 job submissions
 * (a 1 KiB body each) kept 32 in flight, each awaited to its COMMIT, then 4 000 state changes
 * (QUEUED to PROCESSED, the row only), with group commits (the default) and with one
 * transaction per write. PostgreSQL is a throwaway cluster started like the test tier's
 * (`test/pg/cluster.ts`, fsync off: it measures the round trips, not the disk) or
 * `CLUB_BENCH_PG_URL`. Prints a table for BENCHMARKS.md ("The job store on PostgreSQL").
 * Usage: node --import tsx bench/pg-store.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { silentLogger } from "../src/log.ts";
import { openSqliteStore } from "../src/relay/jobs/sqlite-store.ts";
import type { JobStore } from "../src/relay/jobs/store.ts";
import type { JobRecord } from "../src/relay/jobs/types.ts";
import { openPgStore } from "../src/relay/pg/store.ts";
import { openPool } from "../src/relay/pg/pool.ts";
import { findPostgresBin, startCluster } from "../test/pg/cluster.ts";

const COUNT = 4_000;
const CONCURRENCY = 32;
const BODY = Buffer.from(JSON.stringify({ model: "image-1", prompt: "x".repeat(1000) }));

const jobOf = (i: number): JobRecord => ({
  kind: "job",
  id: `job_${i.toString(16).padStart(24, "0")}`,
  seq: i + 1,
  member: `member${i % 100}`,
  created: Date.now(),
  endpoint: "/v1/images/generations",
  model: "image-1",
  body_bytes: BODY.length,
  status: "QUEUED",
  queued: Date.now(),
  attempts: 0,
});

/** Runs `write(i)` for i < COUNT, CONCURRENCY at a time; writes per second. */
async function closedLoop(write: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < COUNT) await write(next++);
    }),
  );
  return COUNT / ((performance.now() - t0) / 1000);
}

async function measure(store: JobStore): Promise<{ submit: number; change: number }> {
  const submit = await closedLoop((i) => store.save(jobOf(i), BODY));
  const change = await closedLoop((i) => {
    const done: JobRecord = { ...jobOf(i), status: "PROCESSED", finished: Date.now() };
    return store.save(done);
  });
  await store.close();
  return { submit, change };
}

async function main(): Promise<void> {
  let url = process.env.CLUB_BENCH_PG_URL ?? "";
  const bin = findPostgresBin();
  const cluster = url || !bin ? undefined : await startCluster(bin);
  url ||= cluster?.url ?? "";
  if (!url) throw new Error("no PostgreSQL: install it or set CLUB_BENCH_PG_URL");
  const rows: string[] = [];
  try {
    for (const [label, max] of [
      ["group commits (one per tick)", 1024],
      ["one transaction per write", 1],
    ] as const) {
      const dir = mkdtempSync(join(tmpdir(), "club-bench-pg-"));
      const sqlite = await measure(
        await openSqliteStore(dir, { log: silentLogger, maxWritesPerCommit: max }),
      );
      const name = `b_${Math.random().toString(16).slice(2, 10)}`;
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      const at = new URL(url);
      at.pathname = `/${name}`;
      const pool = openPool(at.toString());
      const store = await openPgStore(pool, {
        log: silentLogger,
        resultsDir: join(dir, "pg-results"),
        maxWritesPerCommit: max,
      });
      const pgr = await measure(store);
      await pool.end();
      rmSync(dir, { recursive: true, force: true });
      const f = (n: number): string => n.toFixed(0);
      rows.push(
        `| ${label} | ${f(sqlite.submit)} | ${f(pgr.submit)} | ${(pgr.submit / sqlite.submit).toFixed(2)}× | ${f(sqlite.change)} | ${f(pgr.change)} | ${(pgr.change / sqlite.change).toFixed(2)}× |`,
      );
    }
  } finally {
    cluster?.stop();
  }
  process.stdout.write(
    [
      "| writes (4 000, 32 in flight) | SQLite submits/s | PostgreSQL submits/s | ratio | SQLite changes/s | PostgreSQL changes/s | ratio |",
      "| --- | --- | --- | --- | --- | --- | --- |",
      ...rows,
      "",
    ].join("\n"),
  );
}

await main();
