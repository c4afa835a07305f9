/**
 * What hardware detection reports, and the small interface every GPU source implements.
 * Field names are snake_case because the report is printed as is by `detect --json` and
 * served by the status server. Unknown values are null, never guessed.
 */
import type { ManifestGpu } from "../protocol/index.ts";

/** The manifest's vendors, plus `other` for adapters it cannot express (a BMC's VGA chip). */
export type GpuVendor = ManifestGpu["vendor"] | "other";

/** Where a GPU's facts came from. */
export type GpuSourceName =
  "nvidia-smi" | "rocm-smi" | "amdgpu-sysfs" | "system_profiler" | "systeminformation";

/** Live figures of one GPU; the heartbeat's `GpuLoad` without the index. */
export interface LiveFigures {
  vram_used_mb: number | null;
  utilization_pct: number | null;
  temperature_c: number | null;
  power_w: number | null;
}

/** One GPU as detected: static facts plus the live figures read at detection time. */
export interface Gpu extends LiveFigures {
  /** Position in this rig's GPU list: the manifest's and the heartbeat's `index`. */
  index: number;
  vendor: GpuVendor;
  model: string | null;
  /** Memory the GPU can use, in MiB. */
  vram_mb: number | null;
  /** True when `vram_mb` is an estimate (Apple's default GPU budget); a note says so. */
  vram_estimated: boolean;
  /** The GPU shares system RAM (Apple Silicon, integrated GPUs). */
  unified_memory: boolean;
  uuid: string | null;
  bus_id: string | null;
  /** The driver's version; for an in-kernel driver without one, its name (`amdgpu`). */
  driver: string | null;
  /** NVIDIA Multi-Instance GPU mode; null when not applicable or unknown. */
  mig: boolean | null;
  source: GpuSourceName;
  /** The source's own id for the device (`0` for nvidia-smi, `card0` for rocm-smi), to match samples. */
  device: string;
}

/** A GPU before `detectHardware` numbers the combined list. */
export type DetectedGpu = Omit<Gpu, "index">;

/** CPU, memory and OS of the machine. */
export interface HostInfo {
  hostname: string;
  /** A readable OS name and version, e.g. `Ubuntu 22.04.4 LTS` or `macOS 14.5`. */
  os: string | null;
  /** Machine architecture (`x64`, `arm64`), not the Node build's. */
  arch: string;
  cpu: { model: string | null; cores: number | null; threads: number | null };
  ram_mb: number | null;
}

/** Everything `detectHardware` found, and why anything is missing. */
export interface HardwareReport {
  host: HostInfo;
  gpus: Gpu[];
  /** One line per tool that was missing, failed or hung, and per estimate made. */
  notes: string[];
}

/** A GPU the operator declares in config (`gpus`), in the manifest's shape. */
export interface GpuOverride {
  vendor: ManifestGpu["vendor"];
  model: string;
  vram_gb: number;
  /** Replaces the detected GPU with this index; by default, the entry's position in the list. */
  index?: number;
}

/** What every source reads the world through; tests point each part at fakes. */
export interface SourceContext {
  /** Environment of the tools run; its `PATH` decides which tools are found. */
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  /** Filesystem root for `/sys`, `/proc` and `/etc` reads: `/` on a real machine. */
  root: string;
  /** Time each tool may take before it is killed. */
  timeoutMs: number;
}

/** GPUs one source found, and notes on what it could not do. */
export interface SourceResult {
  gpus: DetectedGpu[];
  notes: string[];
}

/** Live figures of one device, keyed by the source's own device id. */
export interface DeviceSample extends LiveFigures {
  device: string;
}

/** One way of finding GPUs (a vendor tool, sysfs, the OS profiler). */
export interface GpuSource {
  readonly name: GpuSourceName;
  /** Platforms where the source is worth trying. */
  readonly platforms: readonly NodeJS.Platform[];
  /** Finds GPUs; never rejects: a missing, failing or hanging tool becomes a note. */
  detect(ctx: SourceContext): Promise<SourceResult>;
  /** Live figures of every device, with one query; rejects with a readable error. */
  sample?(ctx: SourceContext): Promise<DeviceSample[]>;
}

/** Live figures all unknown. */
export const NO_FIGURES: LiveFigures = {
  vram_used_mb: null,
  utilization_pct: null,
  temperature_c: null,
  power_w: null,
};
