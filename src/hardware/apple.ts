/**
 * Macs: `system_profiler -json SPDisplaysDataType SPHardwareDataType` (one call) for the chip
 * and memory, and `sysctl iogpu.wired_limit_mb` for the GPU's memory budget. Apple Silicon's
 * memory is unified: the GPU may wire only part of it, about 2/3 to 3/4 of RAM by default
 * (Metal's `recommendedMaxWorkingSetSize`), exactly the sysctl's value when an admin set it.
 */
import { runTool, type ToolResult } from "../process/run-tool.ts";
import type { DetectedGpu, GpuSource, SourceContext, SourceResult } from "./types.ts";
import { NO_FIGURES } from "./types.ts";
import { isRecord, num, sizeToMib, text, vendorFromName } from "./values.ts";

/** macOS's default GPU budget: about 2/3 of RAM up to 36 GB, about 3/4 above. */
export function defaultGpuBudgetMib(ramMib: number): { mib: number; share: string } {
  const small = ramMib <= 36 * 1024;
  return { mib: Math.round(ramMib * (small ? 2 / 3 : 3 / 4)), share: small ? "2/3" : "3/4" };
}

/** Parses the profiler's JSON and the wired-limit sysctl; exported for tests of odd outputs. */
export function parseProfile(
  stdout: string,
  wiredLimit: ToolResult,
): { gpus: DetectedGpu[]; notes: string[] } {
  const json: unknown = JSON.parse(stdout);
  if (!isRecord(json)) throw new Error("system_profiler printed JSON that is not an object");
  const displays = Array.isArray(json.SPDisplaysDataType) ? json.SPDisplaysDataType : [];
  const hardware: unknown = Array.isArray(json.SPHardwareDataType)
    ? json.SPHardwareDataType[0]
    : undefined;
  const ramMib = isRecord(hardware) ? sizeToMib(hardware.physical_memory) : null;
  const limit = wiredLimit.ok ? num(wiredLimit.stdout) : null;
  const notes: string[] = [];
  const gpus: DetectedGpu[] = [];
  for (const item of displays) {
    if (!isRecord(item)) continue;
    const model = text(item.sppci_model) ?? text(item._name);
    const vendor = vendorFromName(`${text(item.spdisplays_vendor) ?? ""} ${model ?? ""}`);
    const shared = sizeToMib(item.spdisplays_vram_shared);
    let vram = sizeToMib(item.spdisplays_vram) ?? sizeToMib(item._spdisplays_vram) ?? shared;
    let estimated = false;
    const unified = vendor === "apple" || (shared !== null && vram === shared);
    if (vendor === "apple") {
      const name = model ?? "the Apple GPU";
      if (limit !== null && limit > 0) {
        vram = limit;
        notes.push(`system_profiler: ${name} may use ${limit} MiB (iogpu.wired_limit_mb)`);
      } else if (ramMib !== null) {
        const budget = defaultGpuBudgetMib(ramMib);
        vram = budget.mib;
        estimated = true;
        notes.push(
          `system_profiler: ${name} shares ${ramMib} MiB of unified memory; its GPU budget of ${budget.mib} MiB is an estimate (macOS's default, about ${budget.share} of RAM); set it exactly with \`sudo sysctl iogpu.wired_limit_mb=<MiB>\` or the \`gpus\` setting`,
        );
      } else {
        vram = null;
        notes.push(`system_profiler: ${name}: the memory size is unknown, so is its GPU budget`);
      }
    }
    gpus.push({
      vendor,
      model,
      vram_mb: vram,
      vram_estimated: estimated,
      unified_memory: unified,
      uuid: null,
      bus_id: null,
      driver: null,
      mig: null,
      source: "system_profiler",
      device: String(gpus.length),
      ...NO_FIGURES,
    });
  }
  return { gpus, notes };
}

/** Mac GPUs (Apple Silicon, and the Intel, AMD or NVIDIA GPUs of Intel Macs). */
export const appleSource: GpuSource = {
  name: "system_profiler",
  platforms: ["darwin"],

  async detect(ctx: SourceContext): Promise<SourceResult> {
    const options = { env: ctx.env, timeoutMs: ctx.timeoutMs };
    const [profile, wiredLimit] = await Promise.all([
      runTool("system_profiler", ["-json", "SPDisplaysDataType", "SPHardwareDataType"], options),
      runTool("sysctl", ["-n", "iogpu.wired_limit_mb"], options),
    ]);
    if (!profile.ok) return { gpus: [], notes: [profile.message] };
    try {
      return parseProfile(profile.stdout, wiredLimit);
    } catch (err) {
      return { gpus: [], notes: [`system_profiler: ${(err as Error).message}`] };
    }
  },
};
