/**
 * What a running engine holds on its GPUs: the processes of its process group (the watchdog
 * leads it, so the group is the engine and everything it started), looked up in nvidia-smi's
 * compute apps, or rocm-smi's KFD processes where nvidia-smi answers nothing for them. The
 * figure of an engine is the most it holds on any one of its GPUs, as `vramMiB` is declared.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { COMPUTE_APPS_ARGS, SHOW_PIDS_ARGS } from "../hardware/gpu-processes.ts";
import { runTool } from "../process/run-tool.ts";

/** The largest figure believed, as the schema bounds `vramMiB` (16 TiB). */
export const MAX_VRAM_MIB = 16 * 1024 * 1024;

/** One GPU of the rig, as detection found it. */
export interface MeterGpu {
  index: number;
  uuid: string | null;
  /** Its memory in MiB; a larger figure on it is not believed. */
  totalMiB: number | null;
}

export interface VramMeterOptions {
  /** Environment the tools run with; its `PATH` finds nvidia-smi and rocm-smi. */
  env: NodeJS.ProcessEnv;
  /** Longest a tool may take before it is stopped (a wedged driver must not hold us). */
  timeoutMs: number;
  /** The rig's GPUs (detection), to tell which GPU a UUID is. */
  gpus: () => readonly MeterGpu[];
  /** Where the process table is (tests); default `/proc`. */
  proc?: string;
}

/** MiB on each GPU index, or why nothing could be measured. */
export type VramReading = { perGpu: Map<number, number>; mib: number } | { problem: string };

/** Measures an engine: its process group's id (the watchdog's pid) and the GPUs it may use. */
export type VramMeter = (pgid: number, gpus: readonly number[]) => Promise<VramReading>;

/** The live pids whose process group is `pgid`, from the fifth field of `/proc/<pid>/stat`. */
export async function groupPids(pgid: number, proc = "/proc"): Promise<Set<number>> {
  const out = new Set<number>();
  let names: string[];
  try {
    names = await readdir(proc);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(join(proc, name, "stat"), "utf8").catch(() => "");
    // The command name, in parentheses, may hold spaces: read after its closing one.
    const after = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // A zombie (Z) holds no memory; nobody may ever reap it where PID 1 is not an init.
    if (Number(after[2]) === pgid && after[0] !== "Z") out.add(Number(name));
  }
  return out;
}

/** A figure in MiB, or null for `[N/A]`, garbage, negatives and the unbelievable. */
function mib(text: string | undefined): number | null {
  if (text === undefined || !/^\d{1,12}$/.test(text.trim())) return null;
  const n = Number(text.trim());
  return n <= MAX_VRAM_MIB ? n : null;
}

/** `pid, name, gpu_uuid, used_memory` lines (the compute-apps query): MiB per pid and UUID. */
export function parseComputeAppsMemory(
  stdout: string,
): { pid: number; gpu: string; mib: number }[] {
  const out: { pid: number; gpu: string; mib: number }[] = [];
  for (const line of stdout.split("\n")) {
    // The name may hold commas; pid comes first and the UUID and memory last.
    const parts = line.split(",").map((p) => p.trim());
    if (parts.length < 4) continue;
    const pid = Number(parts[0]);
    const gpu = parts[parts.length - 2] ?? "";
    const used = mib(parts[parts.length - 1]);
    if (!Number.isInteger(pid) || pid <= 0 || !gpu.startsWith("GPU-") || used === null) continue;
    out.push({ pid, gpu, mib: used });
  }
  return out;
}

/** `rocm-smi --showpids`: VRAM bytes per pid (the table names how many GPUs, not which). */
export function parseShowPidsMemory(stdout: string): { pid: number; bytes: number }[] {
  const out: { pid: number; bytes: number }[] = [];
  let inTable = false;
  for (const line of stdout.split("\n")) {
    const t = line.trim();
    if (/^PID\s+PROCESS NAME/.test(t)) inTable = true;
    else if (inTable) {
      const m = /^(\d{1,10})\s+.+?\s+\d+\s+(\d{1,20})\s+\d+\s+\d+$/.exec(t);
      const bytes = Number(m?.[2]);
      if (m && bytes <= MAX_VRAM_MIB * 1024 * 1024) out.push({ pid: Number(m[1]), bytes });
    }
  }
  return out;
}

/**
 * A meter over the real tools.
 * @example
 * const meter = vramMeter({ env: process.env, timeoutMs: 5000, gpus: () => detected });
 * await meter(engine.pid, [0]); // { perGpu: Map { 0 => 5120 }, mib: 5120 }
 */
export function vramMeter(options: VramMeterOptions): VramMeter {
  const run = (tool: string, args: readonly string[]) =>
    runTool(tool, args, { env: options.env, timeoutMs: options.timeoutMs });
  return async (pgid, gpus) => {
    const pids = await groupPids(pgid, options.proc);
    if (pids.size === 0) return { problem: `no process in group ${pgid} (not Linux?)` };
    const known = options.gpus();
    const perGpu = new Map<number, number>(gpus.map((g) => [g, 0]));
    const problems: string[] = [];
    let tools = 0;
    const nvidia = await run("nvidia-smi", COMPUTE_APPS_ARGS);
    if (nvidia.ok || nvidia.problem !== "missing") tools++;
    if (nvidia.ok)
      for (const app of parseComputeAppsMemory(nvidia.stdout)) {
        if (!pids.has(app.pid)) continue;
        const index = known.find((g) => g.uuid === app.gpu)?.index;
        if (index !== undefined && perGpu.has(index))
          perGpu.set(index, (perGpu.get(index) ?? 0) + app.mib);
      }
    else if (nvidia.problem !== "missing") problems.push(nvidia.message);
    if ([...perGpu.values()].every((v) => v === 0)) {
      const amd = await run("rocm-smi", SHOW_PIDS_ARGS);
      if (amd.ok || amd.problem !== "missing") tools++;
      if (amd.ok) {
        let bytes = 0;
        for (const p of parseShowPidsMemory(amd.stdout)) if (pids.has(p.pid)) bytes += p.bytes;
        // rocm-smi does not say which GPU: an engine on several counts evenly on each.
        const each = Math.ceil(bytes / 1024 / 1024 / Math.max(1, gpus.length));
        for (const g of gpus) perGpu.set(g, each);
      } else if (amd.problem !== "missing") problems.push(amd.message);
    }
    for (const [index, used] of perGpu) {
      const total = known.find((g) => g.index === index)?.totalMiB ?? null;
      if (used > MAX_VRAM_MIB || (total !== null && used > total))
        return { problem: `GPU ${index}: ${used} MiB is more than the GPU has` };
    }
    const most = Math.max(0, ...perGpu.values());
    if (most === 0 && tools === 0) return { problem: "neither nvidia-smi nor rocm-smi is on PATH" };
    if (most === 0)
      return {
        problem: problems.length
          ? problems.join("; ")
          : `none of its ${pids.size} process(es) holds memory on GPU ${gpus.join(",")}`,
      };
    return { perGpu, mib: most };
  };
}
