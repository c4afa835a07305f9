/** The manifest's `hosts[].gpus[]`: detected GPUs the club can use, with the operator's overrides. */
import type { ManifestGpu } from "../protocol/index.ts";
import type { Gpu, GpuOverride } from "./types.ts";

/** MiB in GB with one decimal, as the manifest's `vram_gb`. */
function gb(mib: number): number {
  return Math.round((mib / 1024) * 10) / 10;
}

/**
 * Detected GPUs of a vendor the club knows and with a known memory size, then the `gpus`
 * setting: an entry replaces the detected GPU with its index (by default its position in the
 * setting) or adds one. Sorted by index.
 * @example
 * manifestGpus(report.gpus, [{ vendor: "nvidia", model: "RTX 3090", vram_gb: 24, index: 1 }]);
 */
export function manifestGpus(
  gpus: readonly Gpu[],
  override: readonly GpuOverride[] = [],
): ManifestGpu[] {
  const byIndex = new Map<number, ManifestGpu>();
  for (const g of gpus) {
    if (g.vendor === "other" || g.vram_mb === null) continue;
    byIndex.set(g.index, {
      vendor: g.vendor,
      model: g.model ?? `unknown ${g.vendor} GPU`,
      vram_gb: gb(g.vram_mb),
      index: g.index,
    });
  }
  override.forEach((o, position) => {
    const index = o.index ?? position;
    byIndex.set(index, { vendor: o.vendor, model: o.model, vram_gb: o.vram_gb, index });
  });
  return [...byIndex.values()].sort((a, b) => a.index - b.index);
}
