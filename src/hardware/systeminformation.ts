/**
 * The fallback for GPUs no vendor tool reported (Intel, or any vendor whose tools are absent):
 * systeminformation's `graphics()`. It runs in a child Node process because it calls
 * nvidia-smi and dmidecode synchronously, which would block our event loop and cannot be
 * interrupted; a child is killed at the deadline like any other tool.
 */
import { createRequire } from "node:module";
import { runTool } from "../process/run-tool.ts";
import type { DetectedGpu, GpuSource, SourceContext, SourceResult } from "./types.ts";
import { isRecord, num, text, vendorFromName } from "./values.ts";

// Plain CommonJS run with `node -e`: the module path is argv[1].
const SCRIPT = `
const si = require(process.argv[1]);
si.graphics().then(
  (g) => process.stdout.write(JSON.stringify((g && g.controllers) || [])),
  (e) => { process.stderr.write(String(e && e.message || e)); process.exitCode = 1; },
);
`;

/** Maps systeminformation's controllers; exported for tests of odd outputs. */
export function parseControllers(json: string, platform: NodeJS.Platform): DetectedGpu[] {
  const controllers: unknown = JSON.parse(json);
  if (!Array.isArray(controllers)) throw new Error("graphics() did not return a list");
  return controllers.filter(isRecord).map((c, i): DetectedGpu => {
    const model = text(c.model) ?? text(c.name);
    // `memoryTotal` comes from nvidia-smi; on Windows `vram` is the driver's registry size.
    // On Linux, `vram` is a PCI aperture size, not memory: leave it unknown.
    const vram =
      num(text(c.memoryTotal)) ??
      (platform === "win32" && c.vramDynamic === false ? num(text(c.vram)) : null);
    return {
      vendor: vendorFromName(`${text(c.vendor) ?? ""} ${model ?? ""}`),
      model,
      vram_mb: vram,
      vram_estimated: false,
      unified_memory: c.vramDynamic === true,
      uuid: null,
      bus_id: text(c.pciBus) ?? text(c.busAddress),
      driver: text(c.driverVersion),
      mig: null,
      source: "systeminformation",
      device: String(i),
      vram_used_mb: num(text(c.memoryUsed)),
      utilization_pct: num(text(c.utilizationGpu)),
      temperature_c: num(text(c.temperatureGpu)),
      power_w: num(text(c.powerDraw)),
    };
  });
}

/** GPUs through systeminformation, isolated in a child process. */
export const systeminformationSource: GpuSource = {
  name: "systeminformation",
  platforms: ["linux", "win32"],

  async detect(ctx: SourceContext): Promise<SourceResult> {
    const modulePath = createRequire(import.meta.url).resolve("systeminformation");
    // Our own loader flags (tsx, test runners) mean nothing to a plain CommonJS script.
    const { NODE_OPTIONS: _ignored, ...env } = ctx.env;
    const result = await runTool(process.execPath, ["-e", SCRIPT, modulePath], {
      env,
      timeoutMs: ctx.timeoutMs,
    });
    if (!result.ok)
      return {
        gpus: [],
        notes: [`systeminformation: graphics() ${result.message.replace(/^\S+ /, "")}`],
      };
    try {
      return { gpus: parseControllers(result.stdout, ctx.platform), notes: [] };
    } catch (err) {
      return { gpus: [], notes: [`systeminformation: ${(err as Error).message}`] };
    }
  },
};
