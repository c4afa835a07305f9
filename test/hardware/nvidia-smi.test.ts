import { describe, expect, it } from "vitest";
import { detectHardware, manifestGpus, type DetectOptions } from "../../src/hardware/index.ts";
import { fakeRoot, fakeTools, fixture, type FakeTools } from "./fake-tools.ts";

/** The detection query; the per-heartbeat one starts `--query-gpu=index,memory.used`. */
const DETECT = "--query-gpu=index,uuid,name";

const detect = (fakes: FakeTools, options: DetectOptions = {}) =>
  detectHardware({ env: fakes.env, platform: "linux", root: fakeRoot(), ...options });

describe("NVIDIA through nvidia-smi", () => {
  it("reads one GPU from one query", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [{ args: DETECT, stdout: fixture("nvidia-smi/1-gpu.csv") }],
    });
    const report = await detect(fakes);
    expect(report.gpus).toEqual([
      {
        index: 0,
        vendor: "nvidia",
        model: "NVIDIA GeForce RTX 4090",
        vram_mb: 24564,
        vram_estimated: false,
        unified_memory: false,
        uuid: "GPU-8c1e0d52-7a3f-b4e1-93d2-5f0a61c7e2b4",
        bus_id: "00000000:01:00.0",
        driver: "550.54.14",
        mig: null,
        source: "nvidia-smi",
        device: "0",
        vram_used_mb: 1873,
        utilization_pct: 7,
        temperature_c: 46,
        power_w: 62.18,
      },
    ]);
    expect(fakes.calls("nvidia-smi")).toEqual([
      "--query-gpu=index,uuid,name,pci.bus_id,memory.total,memory.used,memory.free,utilization.gpu,temperature.gpu,power.draw,driver_version,mig.mode.current --format=csv,noheader,nounits",
    ]);
    expect(report.notes).toEqual(["rocm-smi: not found on PATH (ROCm is not installed)"]);
    expect(manifestGpus(report.gpus)).toEqual([
      { vendor: "nvidia", model: "NVIDIA GeForce RTX 4090", vram_gb: 24, index: 0 },
    ]);
  });

  it("numbers four GPUs in nvidia-smi's order", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [{ args: DETECT, stdout: fixture("nvidia-smi/4-gpu.csv") }],
    });
    const { gpus } = await detect(fakes);
    expect(gpus.map((g) => [g.index, g.device, g.bus_id, g.vram_used_mb, g.power_w])).toEqual([
      [0, "0", "00000000:01:00.0", 20113, 338.45],
      [1, "1", "00000000:21:00.0", 19875, 331.02],
      [2, "2", "00000000:41:00.0", 2, 21.87],
      [3, "3", "00000000:61:00.0", 2, 19.04],
    ]);
    expect(manifestGpus(gpus).map((g) => [g.index, g.model, g.vram_gb])).toEqual([
      [0, "NVIDIA GeForce RTX 3090", 24],
      [1, "NVIDIA GeForce RTX 3090", 24],
      [2, "NVIDIA GeForce RTX 3090", 24],
      [3, "NVIDIA GeForce RTX 3090", 24],
    ]);
  });

  it("turns [N/A] and [Not Supported] into null", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [{ args: DETECT, stdout: fixture("nvidia-smi/na-fields.csv") }],
    });
    const { gpus } = await detect(fakes);
    expect(gpus.map((g) => [g.model, g.utilization_pct, g.power_w, g.temperature_c])).toEqual([
      ["NVIDIA GeForce GT 730", null, null, 38],
      ["NVIDIA GeForce RTX 3050 Laptop GPU", 0, null, 44],
    ]);
    expect(gpus.every((g) => g.mig === null)).toBe(true);
  });

  it("keeps a GPU whose memory is [N/A] but does not advertise it", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [{ args: DETECT, stdout: fixture("nvidia-smi/gb10-unified.csv") }],
    });
    const report = await detect(fakes);
    expect(report.gpus[0]).toMatchObject({
      model: "NVIDIA GB10",
      vram_mb: null,
      vram_used_mb: null,
    });
    expect(manifestGpus(report.gpus)).toEqual([]);
    expect(report.notes).toContain(
      "GPU 0 (NVIDIA GB10) is not advertised: its memory size is unknown; declare it with the `gpus` setting",
    );
  });

  it("reports MIG GPUs as physical GPUs and lists their instances in a note", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [
        { args: DETECT, stdout: fixture("nvidia-smi/mig.csv") },
        { args: "-L", stdout: fixture("nvidia-smi/mig-list.txt") },
      ],
    });
    const report = await detect(fakes);
    expect(report.gpus.map((g) => [g.model, g.mig, g.vram_mb, g.utilization_pct])).toEqual([
      ["NVIDIA A100 80GB PCIe", true, 81920, null],
      ["NVIDIA A100 80GB PCIe", false, 81920, 0],
    ]);
    expect(report.notes).toContain(
      "nvidia-smi: GPU 0 (NVIDIA A100 80GB PCIe) is in MIG mode, 2 instance(s) visible (3g.40gb, 2g.20gb); VRAM and figures are the whole GPU's, and an engine on one instance sees only that instance's memory (declare what to advertise with the `gpus` setting)",
    );
    expect(manifestGpus(report.gpus)).toHaveLength(2);
  });

  it("asks again without the MIG field when an old driver refuses it", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [
        { args: "mig.mode.current", stdout: fixture("nvidia-smi/invalid-field.txt"), exit: 2 },
        { args: DETECT, stdout: fixture("nvidia-smi/no-mig-field.csv") },
      ],
    });
    const report = await detect(fakes);
    expect(report.gpus.map((g) => [g.model, g.vram_mb, g.driver, g.mig])).toEqual([
      ["Tesla P40", 24576, "418.226.00", null],
    ]);
    expect(fakes.calls("nvidia-smi")).toHaveLength(2);
    expect(report.notes.filter((n) => n.includes("nvidia-smi"))).toEqual([]);
  });

  it("explains a missing nvidia-smi", async () => {
    const report = await detect(fakeTools({}));
    expect(report.gpus).toEqual([]);
    expect(report.notes).toEqual([
      "nvidia-smi: not found on PATH (no NVIDIA driver, or its tools are not on PATH)",
      "rocm-smi: not found on PATH (ROCm is not installed)",
      "no GPU found: models here run on the CPU; declare GPUs detection cannot see with the `gpus` setting",
    ]);
  });

  it("explains an nvidia-smi that fails", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [{ stdout: fixture("nvidia-smi/no-driver.txt"), exit: 9 }],
    });
    const report = await detect(fakes);
    expect(report.gpus).toEqual([]);
    expect(report.notes[0]).toBe(
      "nvidia-smi exited with code 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
    );
  });

  it("stops an nvidia-smi that hangs and says so", async () => {
    const fakes = fakeTools({ "nvidia-smi": [{ hang: true }] });
    const report = await detect(fakes, { timeoutMs: 300 });
    expect(report.gpus).toEqual([]);
    expect(report.notes[0]).toBe(
      "nvidia-smi did not answer within 300 ms and was stopped; is the driver hung?",
    );
  });
});
