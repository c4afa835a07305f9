/**
 * AMD GPUs through `rocm-smi --json`: an object keyed `card0`, `card1`, … plus `system`.
 * Key spellings differ between ROCm versions (`Card series` / `Card Series`), so look-ups
 * ignore case; sizes are bytes, as strings.
 */
import { runTool, ToolError, type ToolResult } from "../process/run-tool.ts";
import type {
  DetectedGpu,
  DeviceSample,
  GpuSource,
  LiveFigures,
  SourceContext,
  SourceResult,
} from "./types.ts";
import { bytesToMib, field, isRecord, num, text } from "./values.ts";

const DETECT_ARGS = [
  "--showproductname",
  "--showmeminfo",
  "vram",
  "--showuse",
  "--showtemp",
  "--showpower",
  "--showbus",
  "--showdriverversion",
  "--json",
];
const SAMPLE_ARGS = ["--showmeminfo", "vram", "--showuse", "--showtemp", "--showpower", "--json"];

/** The JSON object in rocm-smi's output; some versions print warnings around it. */
function parseJson(stdout: string): Record<string, unknown> {
  const start = stdout.indexOf("{");
  const end = stdout.lastIndexOf("}");
  if (start < 0 || end < start) throw new Error("rocm-smi printed no JSON object");
  const value: unknown = JSON.parse(stdout.slice(start, end + 1));
  if (!isRecord(value)) throw new Error("rocm-smi printed JSON that is not an object");
  return value;
}

/** `card0`, `card1`, … in numeric order. */
function cards(json: Record<string, unknown>): [string, Record<string, unknown>][] {
  return Object.entries(json)
    .filter((e): e is [string, Record<string, unknown>] => /^card\d+$/.test(e[0]) && isRecord(e[1]))
    .sort(([a], [b]) => Number(a.slice(4)) - Number(b.slice(4)));
}

function figures(card: Record<string, unknown>): LiveFigures {
  const str = (...names: string[]): string | null => text(field(card, ...names));
  return {
    vram_used_mb: bytesToMib(str("VRAM Total Used Memory (B)")),
    utilization_pct: num(str("GPU use (%)")),
    temperature_c: num(
      str("Temperature (Sensor edge) (C)") ?? str("Temperature (Sensor junction) (C)"),
    ),
    power_w: num(
      str("Average Graphics Package Power (W)") ?? str("Current Socket Graphics Package Power (W)"),
    ),
  };
}

/** The marketing name: `Card Series`, else `Device Name`, else a `Card model` that is not a bare PCI id. */
function modelName(card: Record<string, unknown>): string | null {
  const series = text(field(card, "Card Series")) ?? text(field(card, "Device Name"));
  if (series) return series;
  const model = text(field(card, "Card Model"));
  return model && !/^0x[0-9a-f]+$/i.test(model) ? model : null;
}

/** Parses rocm-smi's detection JSON; exported for tests of odd outputs. */
export function parseDetect(stdout: string): DetectedGpu[] {
  const json = parseJson(stdout);
  const system = isRecord(json.system) ? json.system : {};
  const driver = text(field(system, "Driver version"));
  return cards(json).map(([key, card]) => ({
    vendor: "amd",
    model: modelName(card),
    vram_mb: bytesToMib(text(field(card, "VRAM Total Memory (B)"))),
    vram_estimated: false,
    unified_memory: false,
    uuid: text(field(card, "Unique ID")),
    bus_id: text(field(card, "PCI Bus")),
    driver,
    mig: null,
    source: "rocm-smi",
    device: key,
    ...figures(card),
  }));
}

function problemNote(result: Exclude<ToolResult, { ok: true }>): string {
  if (result.problem === "missing") return "rocm-smi: not found on PATH (ROCm is not installed)";
  return result.message;
}

/** AMD GPUs through ROCm's `rocm-smi`. */
export const rocmSmiSource: GpuSource = {
  name: "rocm-smi",
  platforms: ["linux"],

  async detect(ctx: SourceContext): Promise<SourceResult> {
    const result = await runTool("rocm-smi", DETECT_ARGS, {
      env: ctx.env,
      timeoutMs: ctx.timeoutMs,
    });
    if (!result.ok) return { gpus: [], notes: [problemNote(result)] };
    try {
      return { gpus: parseDetect(result.stdout), notes: [] };
    } catch (err) {
      return { gpus: [], notes: [`rocm-smi: ${(err as Error).message}`] };
    }
  },

  async sample(ctx: SourceContext): Promise<DeviceSample[]> {
    const result = await runTool("rocm-smi", SAMPLE_ARGS, {
      env: ctx.env,
      timeoutMs: ctx.timeoutMs,
    });
    if (!result.ok) throw new ToolError(result.problem, result.message);
    return cards(parseJson(result.stdout)).map(([device, card]) => ({
      device,
      ...figures(card),
    }));
  },
};
