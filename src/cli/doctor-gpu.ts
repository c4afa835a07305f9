/** The GPU check of `club-provider doctor`: are the vendor tools there, and do they work? */
import { existsSync } from "node:fs";
import { detectHardware, type HardwareReport } from "../hardware/index.ts";
import type { CheckResult } from "./doctor-checks.ts";

/** GPU tools: a tool that is there but fails, or a driver without its tool, is a failure. */
export async function checkGpuTools(report?: HardwareReport): Promise<CheckResult> {
  const hw = report ?? (await detectHardware());
  const name = "GPU tools";
  const broken = hw.notes.filter(
    (n) => /^(nvidia-smi|rocm-smi)/.test(n) && !/not found on PATH/.test(n),
  );
  if (broken.length)
    return {
      name,
      status: "fail",
      detail: broken.join("; "),
      fix: "run the tool yourself to see why; after a driver update a reboot usually fixes 'Driver/library version mismatch'",
    };
  const vendorTool = hw.gpus.filter((g) => g.source === "nvidia-smi" || g.source === "rocm-smi");
  if (vendorTool.length)
    return {
      name,
      status: "ok",
      detail: vendorTool.map((g) => `GPU ${g.index}: ${g.model ?? "?"} (${g.source})`).join(", "),
    };
  if (existsSync("/proc/driver/nvidia") || hw.gpus.some((g) => g.vendor === "nvidia"))
    return {
      name,
      status: "fail",
      detail: "an NVIDIA GPU or driver is present but nvidia-smi is not on PATH",
      fix: "install the NVIDIA driver utilities (e.g. `apt install nvidia-utils-<version>`), or put nvidia-smi on PATH",
    };
  if (hw.gpus.length)
    return {
      name,
      status: "ok",
      detail: hw.gpus.map((g) => `GPU ${g.index}: ${g.model ?? "?"} (${g.source})`).join(", "),
    };
  return {
    name,
    status: "warn",
    detail: "no GPU tool (nvidia-smi, rocm-smi) and no GPU found: models here run on the CPU",
    fix: "if this rig has a GPU, install its driver tools; or declare it with `club-provider config set gpus …`",
  };
}
