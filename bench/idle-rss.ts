/**
 * The daemon's idle memory, measured the way `npm run bench` measures it: the relay, the fake
 * upstream and the daemon (built CLI, `npm run build` first), one second after the relay lists
 * the daemon's model, and again once it has settled (`IDLE_SETTLE_S`, 30 s by default: V8's
 * memory reducer gives back most of the young generation that start-up grew about 10 s after
 * the last allocation burst). Prints the daemon's VmRSS and, from /proc, its anonymous and
 * file-backed parts; `IDLE_RUNS=5` (the default) runs that many fresh stacks and prints the
 * medians.
 *
 *   npm run build && node --import tsx bench/idle-rss.ts
 *
 * `BENCH_NODE_ARGS="--heapsnapshot-signal=SIGUSR2"` reaches the daemon (and relay) as in the
 * bench; `IDLE_SNAPSHOT=1` then sends SIGUSR2 at the measured moment and waits for the file.
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { median, sleep } from "./common.ts";
import { DIST_MAIN, rssMiB } from "./procs.ts";
import { BenchStack } from "./stack.ts";

/** VmRSS split by /proc/PID/status into anonymous (heap, stacks) and file-backed (code) MiB. */
function rssParts(pid: number): { rss: number; anon: number; file: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
  return { rss: rssMiB(pid), anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024 };
}

type Parts = ReturnType<typeof rssParts>;
const settleMs = Number(process.env.IDLE_SETTLE_S ?? 30) * 1000;

async function once(): Promise<{ early: Parts; settled: Parts }> {
  const stack = new BenchStack();
  try {
    await stack.start();
    await sleep(1000);
    const early = rssParts(stack.daemon.pid);
    await sleep(Math.max(0, settleMs - 1000));
    const parts = rssParts(stack.daemon.pid);
    if (process.env.IDLE_SNAPSHOT === "1") {
      const before = new Set(readdirSync("."));
      process.kill(stack.daemon.pid, "SIGUSR2");
      for (let i = 0; i < 600; i++) {
        const made = readdirSync(".").filter((f) => f.endsWith(".heapsnapshot") && !before.has(f));
        if (made.length > 0) break;
        await sleep(100);
      }
    }
    return { early, settled: parts };
  } finally {
    await stack.stop();
  }
}

if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: npm run build first`);
process.env.BENCH_TUNNEL1 = "0";
const runs = Number(process.env.IDLE_RUNS ?? 5);
const all: { early: Parts; settled: Parts }[] = [];
const show = (p: Parts): string =>
  `${p.rss.toFixed(1)} MiB (anon ${p.anon.toFixed(1)}, file ${p.file.toFixed(1)})`;
for (let i = 0; i < runs; i++) {
  const r = await once();
  all.push(r);
  console.log(
    `run ${i + 1}: daemon RSS at 1 s ${show(r.early)}, at ${settleMs / 1000} s ${show(r.settled)}`,
  );
}
const m = (pick: (r: (typeof all)[number]) => Parts): Parts => ({
  rss: median(all.map((r) => pick(r).rss)),
  anon: median(all.map((r) => pick(r).anon)),
  file: median(all.map((r) => pick(r).file)),
});
console.log(
  `median of ${runs}: daemon RSS idle at 1 s ${show(m((r) => r.early))}, settled at ${settleMs / 1000} s ${show(m((r) => r.settled))}`,
);
