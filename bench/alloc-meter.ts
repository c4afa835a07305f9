/**
 * Loaded into a measured process (`node --import bench/alloc-meter.ts`, by `bench/alloc.ts`):
 * on each SIGUSR2 it writes what the process allocated on the JavaScript heap since the
 * signal before, and the time its GCs took, to `<tmpdir>/club-alloc-<pid>.json`. The bytes are
 * read from V8's GC statistics: the heap used before each GC less what the one before left.
 */
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import v8 from "node:v8";

let profiler = new v8.GCProfiler();
profiler.start();
let used = v8.getHeapStatistics().used_heap_size;

process.on("SIGUSR2", () => {
  const { statistics } = profiler.stop();
  let bytes = 0;
  let gcMicros = 0;
  let left = used;
  for (const gc of statistics) {
    bytes += gc.beforeGC.heapStatistics.usedHeapSize - left;
    left = gc.afterGC.heapStatistics.usedHeapSize;
    gcMicros += gc.cost;
  }
  used = v8.getHeapStatistics().used_heap_size;
  bytes += used - left;
  const out = join(tmpdir(), `club-alloc-${String(process.pid)}.json`);
  writeFileSync(out, JSON.stringify({ bytes, gcMicros, gcs: statistics.length }));
  profiler = new v8.GCProfiler();
  profiler.start();
});
