/**
 * Two relay instances on one PostgreSQL (a throwaway cluster started like the test tier's,
 * `test/pg/cluster.ts`, fsync off, or `CLUB_BENCH_PG_URL`), each `club-provider relay` in its own
 * process, and one daemon whose tunnel lands on instance A, serving the bench upstream. A small
 * non-streamed chat completion is sent to A (the tunnel is local) and to B (it crosses to A over
 * the internal HTTP/2 link): requests/s and latency at concurrency 1 and 16, with the load
 * generator of `npm run bench` (bench/load.ts). Then registry propagation: a provider connects to
 * A, and the time from A listing its model to B listing it, twenty times.
 * Prints a table for BENCHMARKS.md ("Across relay instances").
 * Usage: npm run build && node --import tsx bench/cluster.ts
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../test/pg/cluster.ts";
import { benchPostgres } from "./postgres.ts";
import { MediaRig } from "../test/relay/jobs/media-rig.ts";
import { MODEL, median, quantile } from "./common.ts";
import { load, startCli, startServer, until, type Proc } from "./procs.ts";

const KEY = "sk-bench-cluster-0123456789";
const SECRET = "bench-cluster-secret-0123456789";
const DURATION_MS = Number(process.env.BENCH_CLUSTER_MS ?? 3000);
const ROUNDS = 20;

/** A difference in ms with its sign: `+2.11`, `-0.40`. */
const signed = (ms: number): string => `${ms < 0 ? "-" : "+"}${Math.abs(ms).toFixed(2)}`;

interface Rps {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

/** Polls `url`'s model list every millisecond until it has (or lacks) `model`; the time. */
async function listed(url: string, model: string, present: boolean): Promise<number> {
  const headers = { authorization: `Bearer ${KEY}` };
  for (;;) {
    const res = await fetch(`${url}/v1/models`, { headers });
    const ids = ((await res.json()) as { data: { id: string }[] }).data.map((m) => m.id);
    if (ids.includes(model) === present) return performance.now();
    await new Promise((r) => setTimeout(r, 1));
  }
}

async function main(): Promise<void> {
  const procs: Proc[] = [];
  let db: { url: string; stop(): void } | undefined;
  const dir = mkdtempSync(join(tmpdir(), "club-bench-cluster-"));
  try {
    db = await benchPostgres();
    const url = db.url;
    const upstream = await startServer("upstream.ts");
    procs.push(upstream);
    writeFileSync(join(dir, "keys.json"), JSON.stringify({ [KEY]: "bench" }));
    writeFileSync(join(dir, "key.txt"), KEY, { mode: 0o600 });
    const env = {
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, "config"),
      CLUB_RELAY_CLUSTER_SECRET: SECRET,
    };
    const relay = async (name: string): Promise<string> => {
      const [port, internal] = [await freePort(), await freePort()];
      const args = ["relay", "--port", String(port), "--keys", join(dir, "keys.json")];
      args.push("--rate-limit", "0", "--database", url, "--data-dir", join(dir, name));
      args.push("--internal-listen", `127.0.0.1:${internal}`, "--instance-id", name);
      procs.push(startCli(args, env));
      const origin = `http://127.0.0.1:${port}`;
      await until(`${origin}/healthz`, (s) => s === 200);
      return origin;
    };
    const a = await relay("bench-a");
    const b = await relay("bench-b");

    const conf = join(dir, "config", "club-provider");
    mkdirSync(conf, { recursive: true });
    const services = [
      { url: `http://127.0.0.1:${upstream.port}`, engine: "openai", maxConcurrent: 4096 },
    ];
    writeFileSync(join(conf, "config.json"), JSON.stringify({ services }), { mode: 0o600 });
    const daemonArgs = ["start", "--relay", a.replace("http", "ws"), "--name", "bench"];
    daemonArgs.push("--api-key-file", join(dir, "key.txt"), "--no-autodetect");
    daemonArgs.push("--status-port", String(await freePort()));
    procs.push(startCli(daemonArgs, env));
    const headers = { authorization: `Bearer ${KEY}` };
    for (const origin of [a, b])
      await until(`${origin}/v1/models`, (s, t) => s === 200 && t.includes(MODEL), { headers });

    const rows: string[] = [];
    const rps = (origin: string, concurrency: number) =>
      load<Rps>({
        kind: "rps",
        url: origin,
        key: KEY,
        concurrency,
        warmupMs: 500,
        durationMs: DURATION_MS,
      });
    for (const concurrency of [1, 16]) {
      const local = await rps(a, concurrency);
      const crossing = await rps(b, concurrency);
      rows.push(
        `| ${concurrency} | ${local.rps.toFixed(0)} | ${local.p50.toFixed(2)} / ${local.p99.toFixed(2)} ms ` +
          `| ${crossing.rps.toFixed(0)} | ${crossing.p50.toFixed(2)} / ${crossing.p99.toFixed(2)} ms ` +
          `| ${(crossing.rps / local.rps).toFixed(2)}× | ${signed(crossing.p50 - local.p50)} / ${signed(crossing.p99 - local.p99)} ms |` +
          (local.errors + crossing.errors ? ` (${local.errors + crossing.errors} errors)` : ""),
      );
    }

    // Propagation: a provider connects to A; from A listing its model to B listing it.
    const lags: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const model = `propagate-${i}`;
      const rig = new MediaRig({
        relayUrl: a,
        apiKey: KEY,
        name: `prop-${i}`,
        models: { llm: [model] },
      });
      const atB = listed(b, model, true);
      await rig.start();
      const atA = await listed(a, model, true);
      lags.push(Math.max(0, (await atB) - atA));
      rig.stop();
      await listed(b, model, false);
    }

    console.log(
      `\n| concurrency | local req/s | local p50 / p99 | crossing req/s | crossing p50 / p99 | crossing / local | added p50 / p99 |`,
    );
    console.log(`| --- | --- | --- | --- | --- | --- | --- |`);
    for (const row of rows) console.log(row);
    console.log(
      `\nRegistry propagation (A lists a new provider → B lists it), ${ROUNDS} rounds: ` +
        `p50 ${median(lags).toFixed(1)} ms, p99 ${quantile(lags, 0.99).toFixed(1)} ms, ` +
        `max ${Math.max(...lags).toFixed(1)} ms (polled every millisecond).`,
    );
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    db?.stop();
  }
}

await main();
