/**
 * `npm run bench`: the tunnel against a direct call and one plain proxy hop, every part its own
 * process on loopback. Prints a table and rewrites the results section of BENCHMARKS.md.
 * Bounded in time: about two minutes on a 2-core machine.
 */
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { median, sleep } from "./common.ts";
import {
  DIST_MAIN,
  cpuSeconds,
  load,
  machineBusySeconds,
  ownCpuSeconds,
  peakRss,
  rssMiB,
} from "./procs.ts";
import { writeReport, type Results, type Path } from "./report.ts";
import { BenchStack, KEY } from "./stack.ts";

const PATHS: Path[] = ["direct", "proxy", "tunnel"];
const BULK = 100 * 1024 * 1024;
const CYCLES = 5;

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

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

async function main(): Promise<void> {
  if (!existsSync(DIST_MAIN))
    throw new Error(`${DIST_MAIN} is missing: run \`npm run bench\`, which builds it first`);
  const t0 = performance.now();
  const [busy0, own0] = [machineBusySeconds(), ownCpuSeconds()];
  const stack = new BenchStack();
  try {
    await stack.start();
  } catch (err) {
    await stack.stop();
    throw err;
  }
  const { targets } = stack;
  const job = (path: Path) => ({ url: targets[path], ...(path === "tunnel" ? { key: KEY } : {}) });
  const cpu = () => ({ relay: cpuSeconds(stack.relay.pid), daemon: cpuSeconds(stack.daemon.pid) });
  const r: Results = {
    rps: { direct: {}, proxy: {}, tunnel: {} },
    ttfb: {},
    chunks: {},
    bulk: {},
    cpu: { relay: { msPerRequest: 0, msPerMiB: 0 }, daemon: { msPerRequest: 0, msPerMiB: 0 } },
    rss: {
      idle: 0,
      relayIdle: 0,
      underLoad: 0,
      bulk: 0,
      slowIdle: 0,
      slowConsumer: 0,
      afterLoad: 0,
    },
    reconnectMs: [],
    seconds: 0,
    otherLoad: 0,
  };
  try {
    await sleep(1000);
    r.rss.idle = rssMiB(stack.daemon.pid);
    r.rss.relayIdle = rssMiB(stack.relay.pid);

    for (const concurrency of [1, 16, 256])
      for (const path of PATHS) {
        log(`requests/s, ${path}, concurrency ${concurrency}`);
        const before = cpu();
        const run = load<Rps>({
          ...job(path),
          kind: "rps",
          concurrency,
          warmupMs: 500,
          durationMs: 3000,
        });
        const { result, peak } = await peakRss(stack.daemon.pid, run);
        r.rps[path][concurrency] = result;
        if (path !== "tunnel") continue;
        if (concurrency === 256) r.rss.underLoad = peak;
        if (concurrency === 16) {
          const after = cpu();
          r.cpu.relay.msPerRequest = ((after.relay - before.relay) * 1000) / result.total;
          r.cpu.daemon.msPerRequest = ((after.daemon - before.daemon) * 1000) / result.total;
        }
      }

    for (const path of PATHS) {
      log(`time to first byte, ${path}`);
      r.ttfb[path] = await load<{ p50: number; p99: number }>({
        ...job(path),
        kind: "ttfb",
        count: 200,
      });
    }

    for (const path of PATHS) {
      log(`bulk 100 MiB, ${path}`);
      const before = cpu();
      const run = load<{ mibPerSecond: number[]; bytes: number }>({
        ...job(path),
        kind: "bulk",
        bytes: BULK,
        count: 3,
      });
      const { result, peak } = await peakRss(stack.daemon.pid, run);
      r.bulk[path] = result.mibPerSecond;
      if (path !== "tunnel") continue;
      r.rss.bulk = peak;
      const after = cpu();
      const mib = result.bytes / 1048576;
      r.cpu.relay.msPerMiB = ((after.relay - before.relay) * 1000) / mib;
      r.cpu.daemon.msPerMiB = ((after.daemon - before.daemon) * 1000) / mib;
    }

    for (const path of PATHS) {
      log(`paced SSE (200 chunks, 10 ms apart), ${path}, alone and beside a bulk transfer`);
      const alone = await load<Chunks>({
        ...job(path),
        kind: "chunks",
        chunks: 200,
        intervalMs: 10,
      });
      const bulk = load<unknown>({ ...job(path), kind: "bulk", bytes: BULK, untilMs: 3500 });
      await sleep(400);
      const beside = await load<Chunks>({
        ...job(path),
        kind: "chunks",
        chunks: 200,
        intervalMs: 10,
      });
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
        chunks: 200,
        intervalMs: 10,
      });
      await paced;
      r.chunks[path] = { alone, beside, besideSlow };
    }

    await sleep(1000);
    r.rss.afterLoad = rssMiB(stack.daemon.pid);

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
  log(`done in ${r.seconds.toFixed(0)} s; median reconnect ${median(r.reconnectMs).toFixed(0)} ms`);
  await writeReport(r);
}

await main();
