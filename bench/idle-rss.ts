/**
 * The daemon's idle memory, measured the way `npm run bench` measures it: the relay, the fake
 * upstream and the daemon (built CLI, `npm run build` first), one second after the relay lists
 * the daemon's model. Prints the daemon's VmRSS and, from /proc, its anonymous and file-backed
 * parts; `IDLE_RUNS=5` (the default) runs that many fresh stacks and prints the median.
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

async function once(): Promise<{ rss: number; anon: number; file: number }> {
  const stack = new BenchStack();
  try {
    await stack.start();
    await sleep(1000);
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
    return parts;
  } finally {
    await stack.stop();
  }
}

if (!existsSync(DIST_MAIN)) throw new Error(`${DIST_MAIN} is missing: npm run build first`);
process.env.BENCH_TUNNEL1 = "0";
const runs = Number(process.env.IDLE_RUNS ?? 5);
const all: { rss: number; anon: number; file: number }[] = [];
for (let i = 0; i < runs; i++) {
  const r = await once();
  all.push(r);
  console.log(
    `run ${i + 1}: daemon RSS ${r.rss.toFixed(1)} MiB (anon ${r.anon.toFixed(1)}, file ${r.file.toFixed(1)})`,
  );
}
const m = (pick: (r: (typeof all)[number]) => number) => median(all.map(pick)).toFixed(1);
console.log(
  `median of ${runs}: daemon RSS idle ${m((r) => r.rss)} MiB (anon ${m((r) => r.anon)}, file ${m((r) => r.file)})`,
);
