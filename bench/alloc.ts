/**
 * What one small request allocates in each process: the relay and the daemon of the tunnel,
 * and one Node hop (`proxy.ts`), in bytes of JavaScript heap per request, with the GC time
 * that costs. Unlike CPU time, the bytes barely move between runs or with the machine's load,
 * so a change of a few per cent shows where a CPU measure cannot resolve it (BENCHMARKS.md,
 * "Allocation per request"). The load comes from this process; only the others are measured.
 * Usage: npm run build && node --import tsx bench/alloc.ts [requests per round]
 */
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Pool } from "undici";
import { PATH, body, headers, median } from "./common.ts";
import { BenchStack, KEY } from "./stack.ts";

const REQUESTS = Number(process.argv[2] ?? 20_000);
const CONCURRENCY = 16;
const ROUNDS = 3;

interface Reading {
  bytes: number;
  gcMicros: number;
  gcs: number;
}

/** Asks each process for what it allocated since it was asked last. */
async function read(pids: number[]): Promise<Reading[]> {
  const files = pids.map((pid) => join(tmpdir(), `club-alloc-${String(pid)}.json`));
  for (const f of files) rmSync(f, { force: true });
  for (const pid of pids) process.kill(pid, "SIGUSR2");
  const readings: Reading[] = [];
  for (const f of files) {
    for (let tries = 0; ; tries++) {
      try {
        readings.push(JSON.parse(readFileSync(f, "utf8")) as Reading);
        rmSync(f);
        break;
      } catch (err) {
        if (tries > 200) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }
  return readings;
}

async function load(url: string, key: string | undefined, count: number): Promise<void> {
  const pool = new Pool(url, { connections: CONCURRENCY });
  const h = headers(key);
  const payload = body();
  let left = count;
  const worker = async (): Promise<void> => {
    while (left-- > 0) {
      const res = await pool.request({ path: PATH, method: "POST", headers: h, body: payload });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`${url} answered ${String(res.statusCode)}`);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  await pool.close();
}

const meter = resolve(import.meta.dirname, "alloc-meter.ts");
process.env.BENCH_NODE_ARGS = `${process.env.BENCH_NODE_ARGS ?? ""} --import ${meter}`.trim();
process.env.BENCH_TUNNEL1 ??= "0";
const stack = new BenchStack();
try {
  await stack.start();
  const paths = [
    {
      name: "one Node hop",
      url: stack.targets.proxy,
      key: undefined,
      procs: { proxy: stack.proxy.pid },
    },
    {
      name: "tunnel",
      url: stack.targets.tunnel,
      key: KEY,
      procs: { relay: stack.relay.pid, daemon: stack.daemon.pid },
    },
  ];
  console.log(
    `${String(REQUESTS)} small chat requests per round at ${String(CONCURRENCY)} concurrent, median of ${String(ROUNDS)} rounds`,
  );
  for (const path of paths) {
    const pids = Object.values(path.procs);
    await load(path.url, path.key, 2000);
    const rounds: Reading[][] = [];
    for (let r = 0; r < ROUNDS; r++) {
      await read(pids);
      await load(path.url, path.key, REQUESTS);
      rounds.push(await read(pids));
    }
    Object.keys(path.procs).forEach((name, i) => {
      const per = (f: (x: Reading) => number) => median(rounds.map((x) => f(x[i]!) / REQUESTS));
      console.log(
        `${path.name}, ${name}: ${(per((x) => x.bytes) / 1024).toFixed(1)} KiB per request, GC ${per((x) => x.gcMicros).toFixed(1)} µs per request`,
      );
    });
  }
} finally {
  await stack.stop();
}
