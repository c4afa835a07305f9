/**
 * NVIDIA GPUs through `nvidia-smi`: one CSV query for detection, a shorter one per heartbeat.
 * Fields may read `[N/A]` or `[Not Supported]` (laptops, containers, MIG); those become null.
 */
import { join } from "node:path";
import { runTool, ToolError, type ToolResult } from "../process/run-tool.ts";
import type { DetectedGpu, DeviceSample, GpuSource, SourceContext, SourceResult } from "./types.ts";
import { num, text } from "./values.ts";

const DETECT_FIELDS = [
  "index",
  "uuid",
  "name",
  "pci.bus_id",
  "memory.total",
  "memory.used",
  "memory.free",
  "utilization.gpu",
  "temperature.gpu",
  "power.draw",
  "driver_version",
  "mig.mode.current",
] as const;
const SAMPLE_FIELDS = [
  "index",
  "memory.used",
  "utilization.gpu",
  "temperature.gpu",
  "power.draw",
] as const;

/** The arguments of one query for these fields. */
export function queryArgs(fields: readonly string[]): string[] {
  return [`--query-gpu=${fields.join(",")}`, "--format=csv,noheader,nounits"];
}

/** Runs nvidia-smi; on Windows also where the driver installs it when it is not on PATH. */
async function nvidiaSmi(args: string[], ctx: SourceContext): Promise<ToolResult> {
  const options = { env: ctx.env, timeoutMs: ctx.timeoutMs };
  const result = await runTool("nvidia-smi", args, options);
  if (result.ok || result.problem !== "missing" || ctx.platform !== "win32") return result;
  const system32 = join(ctx.env.WINDIR ?? "C:\\Windows", "System32", "nvidia-smi.exe");
  return runTool(system32, args, options);
}

/** Rows of a `--format=csv,noheader,nounits` answer, each with `count` fields. */
function rows(stdout: string, count: number, notes: string[]): string[][] {
  const out: string[][] = [];
  for (const line of stdout.split("\n")) {
    if (line.trim() === "") continue;
    const cells = line.split(",").map((c) => c.trim());
    if (cells.length !== count) {
      notes.push(`nvidia-smi printed a line that is not ${count} fields, skipped: ${line.trim()}`);
      continue;
    }
    out.push(cells);
  }
  return out;
}

/** Parses the detection query's output; exported for tests of odd outputs. */
export function parseDetect(
  stdout: string,
  fields: readonly string[],
  notes: string[] = [],
): DetectedGpu[] {
  return rows(stdout, fields.length, notes).map((cells) => {
    const get = (name: string): string | undefined => cells[fields.indexOf(name)];
    const total = num(get("memory.total"));
    const free = num(get("memory.free"));
    const used = num(get("memory.used")) ?? (total !== null && free !== null ? total - free : null);
    const mig = text(get("mig.mode.current"));
    return {
      vendor: "nvidia",
      model: text(get("name")),
      vram_mb: total,
      vram_estimated: false,
      unified_memory: false,
      uuid: text(get("uuid")),
      bus_id: text(get("pci.bus_id")),
      driver: text(get("driver_version")),
      mig: mig === null ? null : mig.toLowerCase() === "enabled",
      source: "nvidia-smi",
      device: get("index") ?? "",
      vram_used_mb: used,
      utilization_pct: num(get("utilization.gpu")),
      temperature_c: num(get("temperature.gpu")),
      power_w: num(get("power.draw")),
    };
  });
}

/** MIG instances per GPU index, from `nvidia-smi -L`. */
export function parseMigList(stdout: string): Map<string, string[]> {
  const byGpu = new Map<string, string[]>();
  let gpu: string | undefined;
  for (const line of stdout.split("\n")) {
    const g = /^GPU (\d+):/.exec(line);
    if (g?.[1]) gpu = g[1];
    const m = /^\s+MIG\s+(\S+)\s+Device\s+\d+:/.exec(line);
    if (m?.[1] && gpu !== undefined) byGpu.set(gpu, [...(byGpu.get(gpu) ?? []), m[1]]);
  }
  return byGpu;
}

async function migNotes(gpus: DetectedGpu[], ctx: SourceContext): Promise<string[]> {
  const migGpus = gpus.filter((g) => g.mig === true);
  if (migGpus.length === 0) return [];
  const list = await nvidiaSmi(["-L"], ctx);
  const instances = list.ok ? parseMigList(list.stdout) : new Map<string, string[]>();
  return migGpus.map((g) => {
    const found = instances.get(g.device) ?? [];
    const which = list.ok
      ? `${found.length} instance(s) visible${found.length ? ` (${found.join(", ")})` : ""}`
      : `its instances could not be listed (${list.message})`;
    return `nvidia-smi: GPU ${g.device} (${g.model ?? "unknown model"}) is in MIG mode, ${which}; VRAM and figures are the whole GPU's, and an engine on one instance sees only that instance's memory (declare what to advertise with the \`gpus\` setting)`;
  });
}

function problemNote(result: Exclude<ToolResult, { ok: true }>): string {
  if (result.problem === "missing")
    return "nvidia-smi: not found on PATH (no NVIDIA driver, or its tools are not on PATH)";
  if (result.problem === "timeout") return `${result.message}; is the driver hung?`;
  return result.message;
}

/** NVIDIA GPUs through `nvidia-smi`. */
export const nvidiaSmiSource: GpuSource = {
  name: "nvidia-smi",
  platforms: ["linux", "win32"],

  async detect(ctx: SourceContext): Promise<SourceResult> {
    let fields: readonly string[] = DETECT_FIELDS;
    let result = await nvidiaSmi(queryArgs(fields), ctx);
    // Drivers older than MIG (R450) refuse the whole query over one unknown field.
    if (!result.ok && result.problem === "failed" && /not a valid field/i.test(result.message)) {
      fields = DETECT_FIELDS.filter((f) => f !== "mig.mode.current");
      result = await nvidiaSmi(queryArgs(fields), ctx);
    }
    if (!result.ok) return { gpus: [], notes: [problemNote(result)] };
    const notes: string[] = [];
    const gpus = parseDetect(result.stdout, fields, notes);
    notes.push(...(await migNotes(gpus, ctx)));
    return { gpus, notes };
  },

  async sample(ctx: SourceContext): Promise<DeviceSample[]> {
    const result = await nvidiaSmi(queryArgs(SAMPLE_FIELDS), ctx);
    if (!result.ok) throw new ToolError(result.problem, result.message);
    return rows(result.stdout, SAMPLE_FIELDS.length, []).map((c) => ({
      device: c[0] ?? "",
      vram_used_mb: num(c[1]),
      utilization_pct: num(c[2]),
      temperature_c: num(c[3]),
      power_w: num(c[4]),
    }));
  },
};
