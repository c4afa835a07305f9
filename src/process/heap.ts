/**
 * How fast V8 lets the heap grow between full GCs, for the two long-running processes
 * (`relay`, `start`).
 *
 * V8 sets the next full GC's trigger at a multiple of what the last one left alive, and for a
 * small heap the multiple stays low. A tunnel process's heap is small (12-20 MiB
 * live) while it moves hundreds of MiB a second through fresh 64 KiB socket buffers, so during a
 * long transfer V8 marks the whole heap every 25-40 ms: a third of the daemon's CPU in a bulk
 * transfer went to marking and sweeping (`perf`). At 4× (`--heap-growing-percent=300`) a full GC
 * comes every few seconds instead. What stays alive is the same; the heap may grow further
 * before it is collected.
 *
 * The socket buffers live outside V8's heap. Node 24's and 26's V8 start a full GC for each
 * 64 MiB of them allocated since the last one, whatever the growth; with
 * `--external-memory-accounted-in-global-limit` (the default of V8's own future) they count
 * in the global limit instead, grown by `--external-memory-max-growing-factor`, set here to
 * the heap's own growth (BENCHMARKS.md, "Node 24 and 26: memory outside the heap").
 */
import v8 from "node:v8";
import { wholeNumberSetting } from "../env-number.ts";

/** The old generation may grow to (1 + this / 100) × what the last full GC left, unless set. */
export const DEFAULT_HEAP_GROWTH_PERCENT = 300;
const GROWTH = "--heap-growing-percent";
const ACCOUNTED = "--external-memory-accounted-in-global-limit";
const EXTERNAL_GROWTH = "--external-memory-max-growing-factor";
/** V8's own largest growing factor (`heap-controller.h`): a larger external one is not used. */
const MAX_GROWING_FACTOR = 4;

/**
 * The V8 versions that get the external-memory flags (`node --v8-options` of Node 22 through
 * 26: V8 12.4 and 12.9 have neither, 13.6 the first alone, 14.1 and 14.6 both). Node 24's
 * 13.6 gets none: the first alone cost it 55-67 MiB of peak RSS for 5-15 % of CPU. Setting a
 * flag a V8 does not have prints an error on standard error, and V8 means to remove the first
 * once it is its default, so a V8 newer than the last one checked gets neither.
 * `test/process/heap.test.ts` checks the table against the Node it runs on.
 */
const EXTERNAL_FLAGS: { flag: string; from: [number, number]; before: [number, number] }[] = [
  { flag: ACCOUNTED, from: [14, 1], before: [15, 0] },
  { flag: EXTERNAL_GROWTH, from: [14, 1], before: [15, 0] },
];

/** The external-memory flags of EXTERNAL_FLAGS that a V8 version (`process.versions.v8`) has. */
export function externalMemoryFlagsOf(v8Version: string): string[] {
  const [major = 0, minor = 0] = v8Version.split(".").map(Number);
  const at = major * 1000 + minor;
  return EXTERNAL_FLAGS.filter(
    ({ from, before }) => at >= from[0] * 1000 + from[1] && at < before[0] * 1000 + before[1],
  ).map(({ flag }) => flag);
}

/**
 * `CLUB_HEAP_GROWTH_PERCENT`: a whole number from 0 to 1000; 0 leaves V8's own heuristics,
 * external memory included. A flag given to Node itself (command line or `NODE_OPTIONS`) wins.
 * @returns the percent set, or undefined when nothing was set
 */
export function tuneHeapGrowth(
  env: NodeJS.ProcessEnv = process.env,
  execArgv: readonly string[] = process.execArgv,
  apply: (flags: string) => void = (flags) => v8.setFlagsFromString(flags),
  v8Version: string = process.versions.v8,
): number | undefined {
  const percent = heapGrowthPercent(env.CLUB_HEAP_GROWTH_PERCENT);
  if (percent === 0) return undefined;
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? "").split(/\s+/)];
  const own = (flag: string): boolean =>
    given.some(
      (arg) => arg === flag || arg.startsWith(`${flag}=`) || arg === `--no-${flag.slice(2)}`,
    );
  if (own(GROWTH)) return undefined;
  apply(`${GROWTH}=${percent}`);
  for (const flag of externalMemoryFlagsOf(v8Version)) {
    if (own(flag)) continue;
    if (flag === EXTERNAL_GROWTH)
      apply(`${flag}=${Math.min(1 + percent / 100, MAX_GROWING_FACTOR)}`);
    else apply(flag);
  }
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
