import { describe, expect, it } from "vitest";
import { manifestGpus, type Gpu } from "../../src/hardware/index.ts";

function gpu(index: number, fields: Partial<Gpu> = {}): Gpu {
  return {
    index,
    vendor: "nvidia",
    model: "NVIDIA GeForce RTX 3090",
    vram_mb: 24576,
    vram_estimated: false,
    unified_memory: false,
    uuid: null,
    bus_id: null,
    driver: null,
    mig: null,
    source: "nvidia-smi",
    device: String(index),
    vram_used_mb: null,
    utilization_pct: null,
    temperature_c: null,
    power_w: null,
    ...fields,
  };
}

describe("manifestGpus", () => {
  it("advertises GPUs of a known vendor and memory size, in GB with one decimal", () => {
    expect(
      manifestGpus([
        gpu(0, { vram_mb: 16368 }),
        gpu(1, { vram_mb: null }),
        gpu(2, { vendor: "other", model: "ASPEED Graphics Family" }),
        gpu(3, { vendor: "amd", model: null, vram_mb: 8176 }),
      ]),
    ).toEqual([
      { vendor: "nvidia", model: "NVIDIA GeForce RTX 3090", vram_gb: 16, index: 0 },
      { vendor: "amd", model: "unknown amd GPU", vram_gb: 8, index: 3 },
    ]);
  });

  it("lets the `gpus` setting replace a detected GPU by index and add unseen ones", () => {
    expect(
      manifestGpus(
        [gpu(0), gpu(1, { vram_mb: null })],
        [
          { vendor: "nvidia", model: "RTX 3090 (shared with a desktop)", vram_gb: 20, index: 0 },
          { vendor: "intel", model: "Arc A770", vram_gb: 16, index: 1 },
          { vendor: "amd", model: "Radeon VII", vram_gb: 16 },
        ],
      ),
    ).toEqual([
      { vendor: "nvidia", model: "RTX 3090 (shared with a desktop)", vram_gb: 20, index: 0 },
      { vendor: "intel", model: "Arc A770", vram_gb: 16, index: 1 },
      { vendor: "amd", model: "Radeon VII", vram_gb: 16, index: 2 },
    ]);
  });

  it("advertises only the setting's GPUs when nothing is detected", () => {
    expect(manifestGpus([], [{ vendor: "apple", model: "Apple M2 Ultra", vram_gb: 144 }])).toEqual([
      { vendor: "apple", model: "Apple M2 Ultra", vram_gb: 144, index: 0 },
    ]);
  });
});
