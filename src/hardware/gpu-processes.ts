/**
 * Which processes use the GPUs now: NVIDIA compute processes (`--query-compute-apps`) and
 * graphics ones (`nvidia-smi -q -x`, type G), and AMD's KFD processes (`rocm-smi --showpids`,
 * which names no GPU). The auto-pause reads these to see the owner's own programs.
 */
import { runTool, type ToolOptions } from "../process/run-tool.ts";

/** One process holding a GPU. */
export interface GpuProcess {
  pid: number;
  /** The name or path the tool prints (`/usr/bin/blender`, `python3`). */
  name: string;
  /** The GPU's UUID (`GPU-…`), or null where the tool does not say which GPU (rocm-smi). */
  gpu: string | null;
}

/** The processes found, and `present: false` when no GPU tool could be run at all. */
export interface GpuProcessReport {
  present: boolean;
  processes: GpuProcess[];
  /** A tool that ran but failed, for the log. */
  problems: string[];
}

export const COMPUTE_APPS_ARGS = [
  "--query-compute-apps=pid,process_name,gpu_uuid,used_memory",
  "--format=csv,noheader,nounits",
] as const;
export const QUERY_XML_ARGS = ["-q", "-x"] as const;
export const SHOW_PIDS_ARGS = ["--showpids"] as const;

/** Parses `--query-compute-apps=pid,process_name,gpu_uuid,used_memory` (csv, noheader, nounits). */
export function parseComputeApps(stdout: string): GpuProcess[] {
  const out: GpuProcess[] = [];
  for (const line of stdout.split("\n")) {
    // The name may hold commas; pid comes first and the UUID and memory last.
    const parts = line.split(",").map((p) => p.trim());
    if (parts.length < 4) continue;
    const pid = Number(parts[0]);
    const gpu = parts[parts.length - 2] ?? "";
    if (!Number.isInteger(pid) || pid <= 0 || !gpu.startsWith("GPU-")) continue;
    out.push({ pid, name: parts.slice(1, -2).join(","), gpu });
  }
  return out;
}

const tag = (xml: string, name: string): string | undefined =>
  new RegExp(`<${name}>([^<]*)</${name}>`).exec(xml)?.[1]?.trim();

/** Parses `nvidia-smi -q -x`: every process of every GPU, with its type (C, G or C+G). */
export function parseQueryXml(stdout: string): (GpuProcess & { type: string })[] {
  const out: (GpuProcess & { type: string })[] = [];
  for (const gpuXml of stdout.split(/<gpu\b[^>]*>/).slice(1)) {
    const uuid = tag(gpuXml, "uuid") ?? null;
    for (const info of gpuXml.split("<process_info>").slice(1)) {
      const pid = Number(tag(info, "pid"));
      if (!Number.isInteger(pid) || pid <= 0) continue;
      out.push({
        pid,
        name: tag(info, "process_name") ?? "",
        gpu: uuid,
        type: tag(info, "type") ?? "",
      });
    }
  }
  return out;
}

/**
 * Parses `rocm-smi --showpids`: a table under "KFD process information:" whose columns are
 * PID, PROCESS NAME, GPU(s) (a count, not which), VRAM USED, SDMA USED, CU OCCUPANCY.
 */
export function parseShowPids(stdout: string): GpuProcess[] {
  const out: GpuProcess[] = [];
  let inTable = false;
  for (const line of stdout.split("\n")) {
    if (/^PID\s+PROCESS NAME/.test(line.trim())) {
      inTable = true;
      continue;
    }
    if (!inTable) continue;
    const m = /^(\d+)\s+(.+?)\s+\d+\s+\d+\s+\d+\s+\d+\s*$/.exec(line.trim());
    if (!m) {
      if (line.startsWith("=")) inTable = false;
      continue;
    }
    out.push({ pid: Number(m[1]), name: m[2] ?? "", gpu: null });
  }
  return out;
}

/** Asks nvidia-smi and rocm-smi which processes use the GPUs; never rejects. */
export async function listGpuProcesses(options: ToolOptions): Promise<GpuProcessReport> {
  const [apps, xml, pids] = await Promise.all([
    runTool("nvidia-smi", COMPUTE_APPS_ARGS, options),
    runTool("nvidia-smi", QUERY_XML_ARGS, options),
    runTool("rocm-smi", SHOW_PIDS_ARGS, options),
  ]);
  const problems: string[] = [];
  const processes: GpuProcess[] = [];
  const seen = new Set<string>();
  const add = (p: GpuProcess): void => {
    const key = `${p.pid}/${p.gpu ?? ""}`;
    if (seen.has(key)) return;
    seen.add(key);
    processes.push(p);
  };
  if (apps.ok) parseComputeApps(apps.stdout).forEach(add);
  else if (apps.problem !== "missing") problems.push(apps.message);
  if (xml.ok)
    for (const p of parseQueryXml(xml.stdout)) add({ pid: p.pid, name: p.name, gpu: p.gpu });
  else if (xml.problem !== "missing") problems.push(xml.message);
  if (pids.ok) parseShowPids(pids.stdout).forEach(add);
  else if (pids.problem !== "missing") problems.push(pids.message);
  const present = [apps, xml, pids].some((r) => r.ok || r.problem !== "missing");
  return { present, processes, problems };
}
