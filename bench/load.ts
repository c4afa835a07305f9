/**
 * The load generator, in its own process: one job from argv (JSON), one JSON result on stdout.
 * Requests go through an undici pool with a fixed number of connections, like a busy client.
 * Usage: node --import tsx bench/load.ts '{"kind":"rps","url":"http://127.0.0.1:8787",…}'
 */
import { Pool } from "undici";
import { PATH, body, headers, quantile, sleep, wallMs } from "./common.ts";

/** One benchmark job. `url` is an origin; `key` is sent as a bearer token when given. */
export type Job = { url: string; key?: string } & (
  | { kind: "rps"; concurrency: number; warmupMs: number; durationMs: number }
  | { kind: "rate"; rate: number; connections: number; durationMs: number }
  | { kind: "ttfb"; count: number }
  | { kind: "chunks"; chunks: number; intervalMs: number }
  | { kind: "bulk"; bytes: number; count?: number; untilMs?: number }
  | { kind: "slow"; bytes: number; bytesPerSecond: number; durationMs: number }
);

/** One small chat request, its answer read whole; false when it failed or was not a 200. */
async function ask(pool: Pool, h: Record<string, string>, payload: string): Promise<boolean> {
  try {
    const res = await pool.request({ path: PATH, method: "POST", headers: h, body: payload });
    await res.body.text();
    return res.statusCode === 200;
  } catch {
    return false;
  }
}

async function rps(pool: Pool, job: Extract<Job, { kind: "rps" }>, h: Record<string, string>) {
  const latencies: number[] = [];
  let total = 0;
  let errors = 0;
  const start = performance.now();
  const measureFrom = start + job.warmupMs;
  const end = measureFrom + job.durationMs;
  const payload = body();
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      if (!(await ask(pool, h, payload))) errors++;
      total++;
      if (t0 >= measureFrom) latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, worker));
  const seconds = (performance.now() - measureFrom) / 1000;
  return {
    total,
    errors,
    measured: latencies.length,
    rps: latencies.length / seconds,
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
  };
}

/**
 * Open loop: `rate` requests a second for `durationMs`, each sent on time whether or not the
 * ones before it have been answered (undici queues it while all `connections` are busy), so
 * two paths measured at one rate do the same work per second.
 */
async function rate(pool: Pool, job: Extract<Job, { kind: "rate" }>, h: Record<string, string>) {
  const payload = body();
  const latencies: number[] = [];
  const pending: Promise<void>[] = [];
  let errors = 0;
  const one = async (): Promise<void> => {
    const t0 = performance.now();
    if (!(await ask(pool, h, payload))) errors++;
    latencies.push(performance.now() - t0);
  };
  const start = performance.now();
  const total = Math.round((job.rate * job.durationMs) / 1000);
  for (let sent = 0; sent < total;) {
    const due = Math.min(total, Math.floor(((performance.now() - start) * job.rate) / 1000) + 1);
    for (; sent < due; sent++) pending.push(one());
    await sleep(1);
  }
  await Promise.all(pending);
  return {
    total,
    errors,
    rps: total / ((performance.now() - start) / 1000),
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
  };
}

async function ttfb(pool: Pool, count: number, h: Record<string, string>) {
  const firstByte: number[] = [];
  const payload = body({ stream: true, bench: { chunks: 2, interval_ms: 0 } });
  for (let i = 0; i < count + 20; i++) {
    const t0 = performance.now();
    const res = await pool.request({ path: PATH, method: "POST", headers: h, body: payload });
    let first = 0;
    for await (const _chunk of res.body) first ||= performance.now();
    if (i >= 20) firstByte.push(first - t0);
  }
  return { count, p50: quantile(firstByte, 0.5), p99: quantile(firstByte, 0.99) };
}

async function chunks(
  pool: Pool,
  job: Extract<Job, { kind: "chunks" }>,
  h: Record<string, string>,
) {
  const payload = body({
    stream: true,
    bench: { chunks: job.chunks, interval_ms: job.intervalMs },
  });
  const res = await pool.request({ path: PATH, method: "POST", headers: h, body: payload });
  const delays: number[] = [];
  let text = "";
  for await (const chunk of res.body) {
    const now = wallMs();
    text += (chunk as Buffer).toString("utf8");
    let cut: number;
    while ((cut = text.indexOf("\n\n")) >= 0) {
      const event = text.slice(0, cut);
      text = text.slice(cut + 2);
      const m = /^data: \{"t":([\d.]+),/.exec(event);
      if (m?.[1]) delays.push(now - Number(m[1]));
    }
  }
  // The first events include connection set-up; the steady stream is what a reader sees.
  const steady = delays.slice(5);
  return {
    events: delays.length,
    p50: quantile(steady, 0.5),
    p99: quantile(steady, 0.99),
    max: Math.max(...steady),
  };
}

async function bulk(pool: Pool, job: Extract<Job, { kind: "bulk" }>, h: Record<string, string>) {
  const payload = body({ bench: { bytes: job.bytes } });
  const rates: number[] = [];
  let bytes = 0;
  const deadline = job.untilMs === undefined ? Infinity : performance.now() + job.untilMs;
  for (let i = 0; i < (job.count ?? Infinity) && performance.now() < deadline; i++) {
    const t0 = performance.now();
    const res = await pool.request({ path: PATH, method: "POST", headers: h, body: payload });
    let got = 0;
    for await (const chunk of res.body) got += (chunk as Buffer).length;
    if (got !== job.bytes) throw new Error(`bulk: got ${got} of ${job.bytes} bytes`);
    bytes += got;
    rates.push(got / 1048576 / ((performance.now() - t0) / 1000));
  }
  return { transfers: rates.length, bytes, mibPerSecond: rates };
}

async function slow(pool: Pool, job: Extract<Job, { kind: "slow" }>, h: Record<string, string>) {
  const payload = body({ bench: { bytes: job.bytes } });
  const res = await pool.request({ path: PATH, method: "POST", headers: h, body: payload });
  const t0 = performance.now();
  let got = 0;
  for await (const chunk of res.body) {
    got += (chunk as Buffer).length;
    const elapsed = performance.now() - t0;
    if (elapsed >= job.durationMs) break;
    const ahead = (got / job.bytesPerSecond) * 1000 - elapsed;
    if (ahead > 0) await sleep(Math.min(ahead, job.durationMs - elapsed));
  }
  res.body.destroy();
  return { received: got };
}

async function main(): Promise<void> {
  const job = JSON.parse(process.argv[2] ?? "{}") as Job;
  const connections =
    job.kind === "rps" ? job.concurrency : job.kind === "rate" ? job.connections : 1;
  const pool = new Pool(job.url, { connections, headersTimeout: 0, bodyTimeout: 0 });
  const h = headers(job.key);
  let result: unknown;
  if (job.kind === "rps") result = await rps(pool, job, h);
  else if (job.kind === "rate") result = await rate(pool, job, h);
  else if (job.kind === "ttfb") result = await ttfb(pool, job.count, h);
  else if (job.kind === "chunks") result = await chunks(pool, job, h);
  else if (job.kind === "bulk") result = await bulk(pool, job, h);
  else result = await slow(pool, job, h);
  process.stdout.write(`${JSON.stringify(result)}\n`);
  await pool.destroy();
}

await main();
