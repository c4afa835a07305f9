import { describe, expect, it } from "vitest";
import { detectHardware, manifestGpus } from "../../src/hardware/index.ts";
import { fakeRoot, fakeTools, fixture } from "./fake-tools.ts";

const ROCM_DETECT = "--showproductname";

describe("AMD through rocm-smi", () => {
  it("reads ROCm 6's `Card Series` spelling, past a warning printed before the JSON", async () => {
    const fakes = fakeTools({
      "rocm-smi": [{ args: ROCM_DETECT, stdout: fixture("rocm-smi/rocm6-card-series.json.txt") }],
    });
    const report = await detectHardware({ env: fakes.env, platform: "linux", root: fakeRoot() });
    expect(report.gpus).toEqual([
      {
        index: 0,
        vendor: "amd",
        model: "Navi 31 [Radeon RX 7900 XT/7900 XTX/7900 GRE/7900M]",
        vram_mb: 24560,
        vram_estimated: false,
        unified_memory: false,
        uuid: null,
        bus_id: "0000:03:00.0",
        driver: "6.8.5",
        mig: null,
        source: "rocm-smi",
        device: "card0",
        vram_used_mb: 13758,
        utilization_pct: 12,
        temperature_c: 39,
        power_w: 48,
      },
      expect.objectContaining({ index: 1, device: "card1", bus_id: "0000:07:00.0", power_w: 11 }),
    ]);
    expect(fakes.calls("rocm-smi")).toEqual([
      "--showproductname --showmeminfo vram --showuse --showtemp --showpower --showbus --showdriverversion --json",
    ]);
    expect(manifestGpus(report.gpus).map((g) => [g.vendor, g.vram_gb])).toEqual([
      ["amd", 24],
      ["amd", 24],
    ]);
  });

  it("reads ROCm 5's `Card series` spelling and its average power", async () => {
    const fakes = fakeTools({
      "rocm-smi": [{ stdout: fixture("rocm-smi/rocm5-card-series-lowercase.json.txt") }],
    });
    const { gpus } = await detectHardware({ env: fakes.env, platform: "linux", root: fakeRoot() });
    expect(gpus.map((g) => [g.model, g.vram_mb, g.vram_used_mb, g.power_w, g.driver])).toEqual([
      ["Arcturus GL-XL [AMD Instinct MI100]", 32752, 11, 41, "5.18.13"],
    ]);
  });

  it("prefers rocm-smi to sysfs for the same cards", async () => {
    const fakes = fakeTools({
      "rocm-smi": [{ stdout: fixture("rocm-smi/rocm6-card-series.json.txt") }],
    });
    const report = await detectHardware({
      env: fakes.env,
      platform: "linux",
      root: fakeRoot("sysfs-amdgpu"),
    });
    expect(report.gpus.map((g) => g.source)).toEqual(["rocm-smi", "rocm-smi"]);
    expect(report.notes.some((n) => n.includes("sysfs"))).toBe(false);
  });

  it("says what rocm-smi printed when it is not JSON", async () => {
    const fakes = fakeTools({ "rocm-smi": [{ stdout: "ERROR: GPU[0] : Unable to display\n" }] });
    const report = await detectHardware({ env: fakes.env, platform: "linux", root: fakeRoot() });
    expect(report.notes).toContain("rocm-smi: rocm-smi printed no JSON object");
  });
});

describe("AMD through amdgpu sysfs", () => {
  it("reads cards without ROCm, skipping other vendors and connectors", async () => {
    const report = await detectHardware({
      env: fakeTools({}).env,
      platform: "linux",
      root: fakeRoot("sysfs-amdgpu"),
    });
    expect(report.gpus).toEqual([
      {
        index: 0,
        vendor: "amd",
        model: null,
        vram_mb: 16368,
        vram_estimated: false,
        unified_memory: false,
        uuid: null,
        bus_id: "0000:0b:00.0",
        driver: null,
        mig: null,
        source: "amdgpu-sysfs",
        device: "card1",
        vram_used_mb: 660,
        utilization_pct: 7,
        temperature_c: 45,
        power_w: 32,
      },
    ]);
    expect(report.notes).toEqual([
      "nvidia-smi: not found on PATH (no NVIDIA driver, or its tools are not on PATH)",
      "rocm-smi: not found on PATH (ROCm is not installed)",
      "amdgpu sysfs: card1 has no product name (PCI device 0x73bf); install ROCm (rocm-smi) for the model name, or declare it with the `gpus` setting",
    ]);
    expect(manifestGpus(report.gpus)).toEqual([
      { vendor: "amd", model: "unknown amd GPU", vram_gb: 16, index: 0 },
    ]);
  });

  it("falls back to sysfs when rocm-smi fails", async () => {
    const fakes = fakeTools({
      "rocm-smi": [
        { stderr: "ERROR:root:Driver not initialized (amdgpu not found in modules)\n", exit: 1 },
      ],
    });
    const report = await detectHardware({
      env: fakes.env,
      platform: "linux",
      root: fakeRoot("sysfs-amdgpu"),
    });
    expect(report.gpus.map((g) => g.source)).toEqual(["amdgpu-sysfs"]);
    expect(report.notes).toContain(
      "rocm-smi exited with code 1: ERROR:root:Driver not initialized (amdgpu not found in modules)",
    );
  });
});
