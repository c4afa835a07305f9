/**
 * `detectHardware`: every GPU source that fits the platform, in parallel, each tool with its
 * own deadline, plus the host's CPU, RAM and OS. systeminformation is asked only when no
 * vendor tool found a GPU, since it is the slowest and least precise source.
 */
import { amdSysfsSource } from "./amd-sysfs.ts";
import { appleSource } from "./apple.ts";
import { detectHost } from "./host.ts";
import { nvidiaSmiSource } from "./nvidia-smi.ts";
import { rocmSmiSource } from "./rocm-smi.ts";
import { systeminformationSource } from "./systeminformation.ts";
import type {
  DetectedGpu,
  Gpu,
  GpuSource,
  HardwareReport,
  SourceContext,
  SourceResult,
} from "./types.ts";

/** Time each hardware tool may take before it is killed and reported. */
export const DETECT_TIMEOUT_MS = 3000;

/** The sources tried first, in the order their GPUs are numbered. */
export const GPU_SOURCES: readonly GpuSource[] = [
  nvidiaSmiSource,
  rocmSmiSource,
  amdSysfsSource,
  appleSource,
  systeminformationSource,
];

/** Where detection looks; every field defaults to the real machine. */
export interface DetectOptions {
  /** Environment of the tools; its `PATH` decides which are found. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Default `process.platform`. */
  platform?: NodeJS.Platform;
  /** Filesystem root for `/sys`, `/proc`, `/etc`; default `/`. */
  root?: string;
  /** Deadline of each tool; default 3 s. */
  timeoutMs?: number;
}

/** The context sources run in, with defaults applied. */
export function sourceContext(options: DetectOptions = {}): SourceContext {
  return {
    env: options.env ?? process.env,
    platform: options.platform ?? process.platform,
    root: options.root ?? "/",
    timeoutMs: options.timeoutMs ?? DETECT_TIMEOUT_MS,
  };
}

function notAdvertisedNote(gpu: Gpu): string | null {
  const name = `GPU ${gpu.index} (${gpu.model ?? "unknown model"})`;
  if (gpu.vendor === "other")
    return `${name} is not advertised: the club counts only NVIDIA, AMD, Apple and Intel GPUs`;
  if (gpu.vram_mb === null)
    return `${name} is not advertised: its memory size is unknown; declare it with the \`gpus\` setting`;
  return null;
}

/**
 * Detects GPUs of every vendor and the host's CPU, RAM and OS. Never rejects and never hangs
 * past the deadline: a tool that is missing, fails or hangs leaves a note and no GPUs.
 * @example
 * const { host, gpus, notes } = await detectHardware();
 * for (const g of gpus) console.log(g.index, g.vendor, g.model, g.vram_mb);
 */
export async function detectHardware(options: DetectOptions = {}): Promise<HardwareReport> {
  const ctx = sourceContext(options);
  const applicable = GPU_SOURCES.filter((s) => s.platforms.includes(ctx.platform));
  const fallback = applicable.filter((s) => s === systeminformationSource);
  const primary = applicable.filter((s) => s !== systeminformationSource);
  const hostNotes: string[] = [];
  const [host, ...results] = await Promise.all([
    detectHost(ctx, hostNotes),
    ...primary.map((s) => s.detect(ctx)),
  ]);
  const found = new Map<string, SourceResult>();
  primary.forEach((s, i) => found.set(s.name, results[i] ?? { gpus: [], notes: [] }));
  // rocm-smi and amdgpu sysfs see the same cards; rocm-smi knows more (names, driver).
  if ((found.get("rocm-smi")?.gpus.length ?? 0) > 0) found.delete("amdgpu-sysfs");
  const detected: DetectedGpu[] = [];
  const notes: string[] = [...hostNotes];
  for (const result of found.values()) {
    detected.push(...result.gpus);
    notes.push(...result.notes);
  }
  for (const source of detected.length === 0 ? fallback : []) {
    const result = await source.detect(ctx);
    detected.push(...result.gpus);
    notes.push(...result.notes);
  }
  const gpus: Gpu[] = detected.map((g, index) => ({ index, ...g }));
  if (gpus.every((g) => g.vendor === "other"))
    notes.push(
      "no GPU found: models here run on the CPU; declare GPUs detection cannot see with the `gpus` setting",
    );
  for (const gpu of gpus) {
    const note = notAdvertisedNote(gpu);
    if (note) notes.push(note);
  }
  return { host, gpus, notes };
}
