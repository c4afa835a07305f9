/**
 * The relay's job store under load: `"async": true` submissions through the real relay API
 * (its own process, `bench/store-relay.ts`, on a data directory on this machine's disk), with
 * group commits and without (`maxWritesPerCommit` 1), and a relay started on 100 000 stored
 * jobs: its start-up time and RSS. Prints a table for BENCHMARKS.md ("The job store").
 * Usage: node --import tsx bench/store.ts
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { silentLogger } from "../src/log.ts";
import { openSqliteStore } from "../src/relay/jobs/sqlite-store.ts";
import type { JobRecord } from "../src/relay/jobs/types.ts";
import { quantile } from "./common.ts";
import { rssMiB, startServer, type Proc } from "./procs.ts";
import { KEY } from "./stack.ts";

const STORED = 100_000;
const SUBMITS = 4_000;
const CONCURRENCY = 32;

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Writes `count` finished jobs of 100 members (a tenth FAILED, with 1 KiB bodies kept). */
async function prefill(dir: string, count: number): Promise<void> {
  const store = await openSqliteStore(dir, { log: silentLogger });
  const body = Buffer.from(JSON.stringify({ model: "image-1", prompt: "x".repeat(1000) }));
  const now = Date.now();
  for (let i = 0; i < count; i += 1000) {
    const saves: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) {
      const failed = j % 10 === 0;
      const job: JobRecord = {
        kind: "job",
        id: `job_${j.toString(16).padStart(24, "0")}`,
        seq: j + 1,
        member: `member${j % 100}`,
        created: now,
        endpoint: "/v1/images/generations",
        model: "image-1",
        body_bytes: body.length,
        status: failed ? "FAILED" : "PROCESSED",
        queued: now,
        started: now,
        finished: now,
        attempts: 1,
        provider: "rig1",
        ...(failed
          ? {
              error: { type: "upstream_error", message: "provider rig1 answered 500", status: 500 },
            }
          : {
              body_dropped: true,
              result: { kind: "file", content_type: "image/png", bytes: 4096 },
            }),
      };
      saves.push(store.save(job, failed ? body : undefined));
    }
    await Promise.all(saves);
  }
  await store.close();
}

/** A bench relay on `dir`, and the wall time from spawning it to its `listening` line. */
async function relayOn(
  dir: string,
  perCommit: number,
): Promise<Proc & { port: number; startedMs: number }> {
  const t0 = performance.now();
  const relay = await startServer("store-relay.ts", [dir, String(perCommit)]);
  return { ...relay, startedMs: performance.now() - t0 };
}

/** `SUBMITS` submissions, `CONCURRENCY` at a time: jobs/s and the 202's latency. */
async function submitLoad(port: number): Promise<{ rps: number; p50: number; p99: number }> {
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: CONCURRENCY });
  const payload = JSON.stringify({ model: "image-1", prompt: "a lighthouse at dusk", async: true });
  const latencies: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < SUBMITS) {
        const start = performance.now();
        const res = await pool.request({
          method: "POST",
          path: "/v1/images/generations",
          headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
          body: payload,
        });
        await res.body.text();
        if (res.statusCode !== 202) throw new Error(`submission answered ${res.statusCode}`);
        latencies.push(performance.now() - start);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  await pool.close();
  return { rps: SUBMITS / seconds, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

const rows: string[] = [];
for (const perCommit of [1024, 1]) {
  const dir = mkdtempSync(join(tmpdir(), "club-bench-store-"));
  const relay = await relayOn(dir, perCommit);
  const r = await submitLoad(relay.port);
  await relay.stop();
  rmSync(dir, { recursive: true, force: true });
  const what = perCommit === 1 ? "one transaction per write" : "group commits (one per tick)";
  log(
    `${what}: ${r.rps.toFixed(0)} jobs/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`,
  );
  rows.push(`| ${what} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
}

let dir = mkdtempSync(join(tmpdir(), "club-bench-store-"));
const empty = await relayOn(dir, 1024);
const emptyRss = rssMiB(empty.pid);
const emptyStart = empty.startedMs;
await empty.stop();
rmSync(dir, { recursive: true, force: true });
dir = mkdtempSync(join(tmpdir(), "club-bench-store-"));
log(`writing ${STORED} stored jobs`);
await prefill(dir, STORED);
const starts: number[] = [];
let rss = NaN;
let after = { rps: NaN, p50: NaN, p99: NaN };
for (let i = 0; i < 3; i++) {
  const relay = await relayOn(dir, 1024);
  starts.push(relay.startedMs);
  rss = rssMiB(relay.pid);
  if (i === 2) after = await submitLoad(relay.port);
  await relay.stop();
}
rmSync(dir, { recursive: true, force: true });
const start = quantile(starts, 0.5);
log(
  `empty relay RSS ${emptyRss.toFixed(0)} MiB; with ${STORED} jobs: start ${start.toFixed(0)} ms, RSS ${rss.toFixed(0)} MiB`,
);
process.stdout.write(
  [
    "| submissions (4 000, 32 at a time) | jobs/s | p50 of the 202 (ms) | p99 of the 202 (ms) |",
    "| --- | --- | --- | --- |",
    ...rows,
    `| group commits, on ${STORED} stored jobs | ${after.rps.toFixed(0)} | ${after.p50.toFixed(2)} | ${after.p99.toFixed(2)} |`,
    "",
    "| relay | start-up, spawn to listening (ms) | RSS after start (MiB) |",
    "| --- | --- | --- |",
    `| empty data directory | ${emptyStart.toFixed(0)} | ${emptyRss.toFixed(0)} |`,
    `| ${STORED} stored jobs | ${start.toFixed(0)} | ${rss.toFixed(0)} |`,
    "",
  ].join("\n"),
);
