/**
 * `npm run bench`: the tunnel against a direct call, nginx (when installed) and one plain Node
 * proxy hop, every part its own process on loopback. Requests/s, latency and bulk use `wrk`
 * when it is installed (the Node load generator otherwise); streams, memory and reconnects use
 * the Node load generator. Prints the tables and rewrites the results section of BENCHMARKS.md.
 * Bounded in time: about three minutes on a 2-core machine.
 *
 * `BENCH_QUICK=1`: short runs, printed only (BENCHMARKS.md is left alone), for iterating.
 * `BENCH_ONLY=rps,bulk`: only those sections (rps, rate, ttfb, bulk, chunks, memory, reconnect).
 * `BENCH_RATE=2000`: the offered requests/s at which each path's CPU per request is measured.
 * `BENCH_WRK=0`: the Node load generator even where wrk is installed.
 * `BENCH_ALONE_CHUNKS=200`: fewer events in the paced stream measured alone (1000 by default).
 * `BENCH_ROUNDS=7`: more rounds of the requests/s runs (3 by default), to compare paths whose
 * difference is within one round's noise.
 */
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { body, median, sleep } from "./common.ts";
import {
  DIST_MAIN,
  cpuSeconds,
  load,
  machineBusySeconds,
  ownCpuSeconds,
  peakRss,
  rssMiB,
} from "./procs.ts";
import { CONCURRENCY, printReport, writeReport, type Results, type Path } from "./report.ts";
import { BenchStack, KEY } from "./stack.ts";
import { wrk, wrkAvailable } from "./wrk.ts";

const QUICK = process.env.BENCH_QUICK === "1";
const ONLY = new Set((process.env.BENCH_ONLY ?? "").split(",").filter(Boolean));
const want = (section: string): boolean => ONLY.size === 0 || ONLY.has(section);
const BULK = 100 * 1024 * 1024;
const CYCLES = QUICK ? 1 : 5;
/** The offered rate at which every path's CPU per request is also measured (`BENCH_RATE`). */
const RATE = Number(process.env.BENCH_RATE ?? 2000);
/** Chunks of the paced stream measured alone (`BENCH_ALONE_CHUNKS`). */
const ALONE_CHUNKS = Number(process.env.BENCH_ALONE_CHUNKS ?? 1000);
/**
 * Requests/s runs go in rounds, every path once per round, and each figure is the median over
 * the rounds: a burst of other work on a shared machine then spoils one run of each path
 * instead of all of one path's. The two tunnels swap places every other round, so that
 * neither always runs right after the other. Seconds of each run, and of the warm-up before a
 * path's first.
 */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
const RPS_SECONDS = 1;
const swapTunnels = (p: Path): Path =>
  p === "tunnel" ? "tunnel1" : p === "tunnel1" ? "tunnel" : p;
const WARMUP_SECONDS = 1;

interface Rps {
  rps: number;
  p50: number;
  p99: number;
  total: number;
  errors: number;
}
interface Chunks {
  p50: number;
  p99: number;
  max: number;
  events: number;
}

/** The median of each figure over the rounds; counts are summed. */
function combine(runs: Rps[]): Rps {
  const of = (k: "rps" | "p50" | "p99") => median(runs.map((x) => x[k]));
  const sum = (k: "total" | "errors") => runs.reduce((n, x) => n + x[k], 0);
  return {
    rps: of("rps"),
    p50: of("p50"),
    p99: of("p99"),
    total: sum("total"),
    errors: sum("errors"),
  };
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

async function main(): Promise<void> {
  if (!existsSync(DIST_MAIN))
    throw new Error(`${DIST_MAIN} is missing: run \`npm run bench\`, which builds it first`);
  const t0 = performance.now();
  const [busy0, own0] = [machineBusySeconds(), ownCpuSeconds()];
  const useWrk = process.env.BENCH_WRK !== "0" && wrkAvailable();
  const stack = new BenchStack();
  try {
    await stack.start();
  } catch (err) {
    await stack.stop();
    throw err;
  }
  const { targets } = stack;
  const paths: Path[] = [
    "direct",
    ...(targets.nginx ? (["nginx"] as const) : []),
    "proxy",
    ...(targets.tunnel1 ? (["tunnel1"] as const) : []),
    "tunnel",
  ];
  const url = (path: Path): string => targets[path] ?? "";
  const tunnelPath = (path: Path): boolean => path === "tunnel" || path === "tunnel1";
  const job = (path: Path) => ({ url: url(path), ...(tunnelPath(path) ? { key: KEY } : {}) });
  const pair1 = stack.pair1;
  const cpu = () => ({
    relay: cpuSeconds(stack.relay.pid),
    daemon: cpuSeconds(stack.daemon.pid),
    proxy: cpuSeconds(stack.proxy.pid),
    relay1: pair1 ? cpuSeconds(pair1.relay.pid) : 0,
    daemon1: pair1 ? cpuSeconds(pair1.daemon.pid) : 0,
  });
  const perUnit = (before: ReturnType<typeof cpu>, units: number) => {
    const after = cpu();
    const ms = (p: keyof typeof after) => ((after[p] - before[p]) * 1000) / units;
    return {
      relay: ms("relay"),
      daemon: ms("daemon"),
      proxy: ms("proxy"),
      relay1: ms("relay1"),
      daemon1: ms("daemon1"),
    };
  };
  const r: Results = {
    loader: useWrk ? "wrk" : "node",
    quick: QUICK,
    paths,
    rps: {},
    ttfb: {},
    chunks: {},
    bulk: {},
    cpu: {},
    rss: {},
    reconnectMs: [],
    seconds: 0,
    otherLoad: 0,
  };
  /** One requests/s run; the Node load generator warms up inside it, longer in the first round. */
  const rpsRun = async (path: Path, concurrency: number, first: boolean): Promise<Rps> => {
    if (!useWrk)
      return load<Rps>({
        ...job(path),
        kind: "rps",
        concurrency,
        warmupMs: first ? WARMUP_SECONDS * 1000 : 300,
        durationMs: RPS_SECONDS * 1000,
      });
    return wrk({ ...job(path), body: body(), connections: concurrency, seconds: RPS_SECONDS });
  };
  const warmUp = (path: Path, concurrency: number) =>
    wrk({ ...job(path), body: body(), connections: concurrency, seconds: WARMUP_SECONDS });
  try {
    await sleep(1000);
    r.rss.idle = rssMiB(stack.daemon.pid);
    r.rss.relayIdle = rssMiB(stack.relay.pid);

    if (want("rps"))
      for (const concurrency of CONCURRENCY) {
        const runs = new Map<Path, Rps[]>();
        /** CPU ms and requests of the measured runs, for the cost per request at 16. */
        const spent = {
          ...{ relay: 0, daemon: 0, proxy: 0, relay1: 0, daemon1: 0 },
          ...{ tunnelRequests: 0, proxyRequests: 0, tunnel1Requests: 0 },
        };
        for (let round = 0; round < ROUNDS; round++)
          for (const path of round % 2 === 0 ? paths : paths.map(swapTunnels)) {
            log(
              `requests/s, ${path}, concurrency ${concurrency}, round ${round + 1}/${ROUNDS} (${r.loader})`,
            );
            if (useWrk && round === 0) await warmUp(path, concurrency);
            const before = cpu();
            const { result, peak } = await peakRss(
              stack.daemon.pid,
              rpsRun(path, concurrency, round === 0),
            );
            const ms = perUnit(before, 1);
            if (path === "tunnel") {
              spent.relay += ms.relay;
              spent.daemon += ms.daemon;
              spent.tunnelRequests += result.total;
              if (concurrency === 64) r.rss.underLoad = Math.max(r.rss.underLoad ?? 0, peak);
            } else if (path === "tunnel1") {
              spent.relay1 += ms.relay1;
              spent.daemon1 += ms.daemon1;
              spent.tunnel1Requests += result.total;
            } else if (path === "proxy") {
              spent.proxy += ms.proxy;
              spent.proxyRequests += result.total;
            }
            runs.set(path, [...(runs.get(path) ?? []), result]);
          }
        for (const [path, list] of runs) (r.rps[path] ??= {})[concurrency] = combine(list);
        if (concurrency === 16) {
          r.cpu.proxy = { ...r.cpu.proxy, msPerRequest: spent.proxy / spent.proxyRequests };
          r.cpu.relay = { ...r.cpu.relay, msPerRequest: spent.relay / spent.tunnelRequests };
          r.cpu.daemon = { ...r.cpu.daemon, msPerRequest: spent.daemon / spent.tunnelRequests };
          if (spent.tunnel1Requests > 0) {
            const per = (ms: number) => ms / spent.tunnel1Requests;
            r.cpu.relay1 = { ...r.cpu.relay1, msPerRequest: per(spent.relay1) };
            r.cpu.daemon1 = { ...r.cpu.daemon1, msPerRequest: per(spent.daemon1) };
          }
        }
      }

    // CPU per request at one offered rate for every path: closed loop, a faster path batches
    // more requests per wake-up and so pays less per request; here each does the same work.
    if (want("rate")) {
      const measured = paths.filter((p) => p === "proxy" || tunnelPath(p));
      const spent = { relay: 0, daemon: 0, proxy: 0, relay1: 0, daemon1: 0 };
      type Proc = keyof typeof spent;
      const PROCS_OF: Partial<Record<Path, Proc[]>> = {
        proxy: ["proxy"],
        tunnel: ["relay", "daemon"],
        tunnel1: ["relay1", "daemon1"],
      };
      const requests: Partial<Record<Path, number>> = {};
      const at = (path: Path, durationMs: number) =>
        load<{ total: number; errors: number }>({
          ...job(path),
          kind: "rate",
          rate: RATE,
          connections: 16,
          durationMs,
        });
      // A second unmeasured first, so that the JIT has compiled the path when this runs alone.
      for (const path of measured) await at(path, 1000);
      for (let round = 0; round < ROUNDS; round++)
        for (const path of round % 2 === 0 ? measured : [...measured].reverse()) {
          log(`CPU at ${RATE} requests/s, ${path}, round ${round + 1}/${ROUNDS}`);
          const before = cpu();
          const result = await at(path, QUICK ? 1000 : 3000);
          if (result.errors > 0) throw new Error(`${path}: ${result.errors} errors at ${RATE}/s`);
          const ms = perUnit(before, 1);
          requests[path] = (requests[path] ?? 0) + result.total;
          for (const proc of PROCS_OF[path] ?? []) spent[proc] += ms[proc];
        }
      r.rate = RATE;
      for (const path of measured)
        for (const proc of PROCS_OF[path] ?? [])
          (r.cpu[proc] ??= {}).msAtRate = spent[proc] / (requests[path] ?? NaN);
    }

    if (want("ttfb"))
      for (const path of paths) {
        log(`time to first byte, ${path}`);
        r.ttfb[path] = await load<{ p50: number; p99: number }>({
          ...job(path),
          kind: "ttfb",
          count: QUICK ? 50 : 200,
        });
      }

    if (want("bulk"))
      for (const path of paths) {
        log(`bulk 100 MiB, ${path} (${r.loader})`);
        const before = cpu();
        const run = useWrk
          ? wrk({
              ...job(path),
              body: body({ bench: { bytes: BULK } }),
              connections: 1,
              seconds: QUICK ? 2 : 4,
            }).then((w) => ({ mibPerSecond: [w.mibPerSecond], bytes: w.bytes }))
          : load<{ mibPerSecond: number[]; bytes: number }>({
              ...job(path),
              kind: "bulk",
              bytes: BULK,
              count: QUICK ? 1 : 3,
            });
        const { result, peak } = await peakRss(stack.daemon.pid, run);
        r.bulk[path] = result.mibPerSecond;
        const ms = perUnit(before, result.bytes / 1048576);
        if (path === "proxy") (r.cpu.proxy ??= {}).msPerMiB = ms.proxy;
        if (path === "tunnel1") {
          (r.cpu.relay1 ??= {}).msPerMiB = ms.relay1;
          (r.cpu.daemon1 ??= {}).msPerMiB = ms.daemon1;
        }
        if (path !== "tunnel") continue;
        r.rss.bulk = peak;
        (r.cpu.relay ??= {}).msPerMiB = ms.relay;
        (r.cpu.daemon ??= {}).msPerMiB = ms.daemon;
      }

    if (want("chunks"))
      for (const path of paths) {
        log(`paced SSE (chunks 10 ms apart), ${path}, alone and beside a bulk transfer`);
        const chunks = QUICK ? 100 : 200;
        // Alone, 1000 chunks: a p99 of 200 is their second worst, which one scheduler hiccup or
        // one GC in any process of the path sets; of 1000 it is the tenth.
        const alone = await load<Chunks>({
          ...job(path),
          kind: "chunks",
          chunks: QUICK ? 100 : ALONE_CHUNKS,
          intervalMs: 10,
        });
        const bulk = load<unknown>({ ...job(path), kind: "bulk", bytes: BULK, untilMs: 3500 });
        await sleep(400);
        const beside = await load<Chunks>({ ...job(path), kind: "chunks", chunks, intervalMs: 10 });
        await bulk;
        // The same beside a transfer its consumer reads at 20 MiB/s: flow control, not CPU, bounds it.
        const paced = load<unknown>({
          ...job(path),
          kind: "slow",
          bytes: BULK,
          bytesPerSecond: 20 * 1048576,
          durationMs: 3000,
        });
        await sleep(400);
        const besideSlow = await load<Chunks>({
          ...job(path),
          kind: "chunks",
          chunks,
          intervalMs: 10,
        });
        await paced;
        r.chunks[path] = { alone, beside, besideSlow };
      }

    await sleep(1000);
    r.rss.afterLoad = rssMiB(stack.daemon.pid);

    if (want("memory")) {
      // A fresh daemon, so the figure is what a slow consumer costs, not what earlier load left.
      log("slow consumer: 1 MiB/s for 5 s of a 1 GiB response, on a freshly started daemon");
      await stack.daemon.stop();
      await stack.startDaemon();
      await sleep(1000);
      r.rss.slowIdle = rssMiB(stack.daemon.pid);
      const slow = load<unknown>({
        ...job("tunnel"),
        kind: "slow",
        bytes: (1024 * BULK) / 100,
        bytesPerSecond: 1048576,
        durationMs: 5000,
      });
      r.rss.slowConsumer = (await peakRss(stack.daemon.pid, slow)).peak;
    }

    if (want("reconnect"))
      for (let i = 0; i < CYCLES; i++) {
        log(`relay restart ${i + 1}/${CYCLES}`);
        // A fresh daemon each time: every cycle starts from the first backoff step, like a rig
        // whose tunnel had been up for a while.
        if (i > 0) {
          await stack.daemon.stop();
          await stack.startDaemon();
        }
        await stack.relay.stop();
        const back = await stack.startRelay();
        r.reconnectMs.push((await stack.registered(2)) - back);
      }
  } finally {
    await stack.stop();
  }
  r.seconds = (performance.now() - t0) / 1000;
  // CPU the machine spent on anything but this benchmark, as a share of both cores' time.
  const foreign = machineBusySeconds() - busy0 - (ownCpuSeconds() - own0);
  r.otherLoad = Math.max(0, foreign / (r.seconds * cpus().length));
  if (r.otherLoad > 0.05)
    log(
      `other processes used ${(r.otherLoad * 100).toFixed(0)}% of the CPU: figures are unreliable`,
    );
  const reconnect = r.reconnectMs.length
    ? `; median reconnect ${median(r.reconnectMs).toFixed(0)} ms`
    : "";
  log(`done in ${r.seconds.toFixed(0)} s${reconnect}`);
  // A partial or quick run is printed, not written over the full results.
  if (QUICK || ONLY.size > 0) printReport(r);
  else await writeReport(r);
}

await main();
