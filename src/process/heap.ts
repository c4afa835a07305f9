/**
 * How fast V8 lets the old generation grow between full GCs, for the two long-running
 * processes (`relay`, `start`).
 *
 * V8 sets the next full GC's trigger at a multiple of what the last one left alive, and for a
 * small heap the multiple stays low. A tunnel process's heap is small (12-20 MiB
 * live) while it moves hundreds of MiB a second through fresh 64 KiB socket buffers, so during a
 * long transfer V8 marks the whole heap every 25-40 ms: a third of the daemon's CPU in a bulk
 * transfer went to marking and sweeping (`perf`). At 4× (`--heap-growing-percent=300`) a full GC comes
 * every few seconds instead on Node 22; Node 24's and 26's V8 also collects on external memory
 * pressure, so there it helps less (BENCHMARKS.md, "Long transfers and V8's heap growth").
 * What stays alive is the same; the heap may grow further before it is collected.
 */
import v8 from "node:v8";
import { wholeNumberSetting } from "../env-number.ts";

/** The old generation may grow to (1 + this / 100) × what the last full GC left, unless set. */
export const DEFAULT_HEAP_GROWTH_PERCENT = 300;
const FLAG = "--heap-growing-percent";

/**
 * `CLUB_HEAP_GROWTH_PERCENT`: a whole number from 0 to 1000; 0 leaves V8's own heuristics. A
 * `--heap-growing-percent` given to Node itself (command line or `NODE_OPTIONS`) wins.
 * @returns the percent set, or undefined when nothing was set
 */
export function tuneHeapGrowth(
  env: NodeJS.ProcessEnv = process.env,
  execArgv: readonly string[] = process.execArgv,
  apply: (flags: string) => void = (flags) => v8.setFlagsFromString(flags),
): number | undefined {
  const percent = heapGrowthPercent(env.CLUB_HEAP_GROWTH_PERCENT);
  const own = [...execArgv, ...(env.NODE_OPTIONS ?? "").split(/\s+/)].some(
    (arg) => arg === FLAG || arg.startsWith(`${FLAG}=`),
  );
  if (percent === 0 || own) return undefined;
  apply(`${FLAG}=${percent}`);
  return percent;
}

function heapGrowthPercent(value: string | undefined): number {
  return wholeNumberSetting(value, {
    name: "CLUB_HEAP_GROWTH_PERCENT",
    code: "heap_growth_invalid",
    fallback: DEFAULT_HEAP_GROWTH_PERCENT,
    min: 0,
    max: 1000,
    range: "from 0 (V8's own) to 1000",
  });
}
