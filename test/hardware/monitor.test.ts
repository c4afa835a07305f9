import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it, vi } from "vitest";
import { detectHardware, GpuMonitor } from "../../src/hardware/index.ts";
import { createLogger } from "../../src/log.ts";
import { fakeRoot, fakeTools, fixture } from "./fake-tools.ts";

const DETECT = "--query-gpu=index,uuid,name";
const SAMPLE = "--query-gpu=index,memory.used,utilization.gpu,temperature.gpu,power.draw";

function logLines(): { log: ReturnType<typeof createLogger>; messages: () => string[] } {
  const out = new PassThrough();
  let text = "";
  out.on("data", (c: Buffer) => (text += c.toString()));
  const log = createLogger({ format: "json", level: "info", destination: out });
  return {
    log,
    messages: () =>
      text
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
  };
}

async function nvidiaRig() {
  const fakes = fakeTools({
    "nvidia-smi": [
      { args: DETECT, stdout: fixture("nvidia-smi/4-gpu.csv") },
      { args: SAMPLE, stdout: fixture("nvidia-smi/4-gpu-sample.csv") },
    ],
  });
  const root = fakeRoot();
  const report = await detectHardware({ env: fakes.env, platform: "linux", root });
  return { fakes, root, report };
}

describe("GpuMonitor", () => {
  it("serves detection's figures first, then samples with one query", async () => {
    const { fakes, root, report } = await nvidiaRig();
    const monitor = new GpuMonitor({ gpus: report.gpus, intervalMs: 60_000, env: fakes.env, root });
    expect(monitor.current()[0]).toEqual({
      index: 0,
      vram_used_mb: 20113,
      utilization_pct: 97,
      temperature_c: 71,
      power_w: 338.45,
    });
    const before = fakes.calls("nvidia-smi").length;
    await Promise.all([monitor.sample(), monitor.sample()]);
    expect(fakes.calls("nvidia-smi").slice(before)).toEqual([
      `${SAMPLE} --format=csv,noheader,nounits`,
    ]);
    expect(monitor.current().map((g) => [g.index, g.vram_used_mb, g.utilization_pct])).toEqual([
      [0, 20113, 98],
      [1, 19875, 96],
      [2, 8211, 41],
      [3, 2, 0],
    ]);
  });

  it("turns figures to null while the tool fails, logs once, and recovers", async () => {
    const { fakes, root, report } = await nvidiaRig();
    const { log, messages } = logLines();
    const monitor = new GpuMonitor({
      gpus: report.gpus,
      intervalMs: 60_000,
      env: fakes.env,
      root,
      log,
    });
    fakes.set("nvidia-smi", [{ stdout: fixture("nvidia-smi/no-driver.txt"), exit: 9 }]);
    await monitor.sample();
    await monitor.sample();
    expect(monitor.current()[2]).toEqual({
      index: 2,
      vram_used_mb: null,
      utilization_pct: null,
      temperature_c: null,
      power_w: null,
    });
    fakes.set("nvidia-smi", [{ args: SAMPLE, stdout: fixture("nvidia-smi/4-gpu-sample.csv") }]);
    await monitor.sample();
    expect(monitor.current()[2]?.vram_used_mb).toBe(8211);
    expect(messages()).toEqual([
      "nvidia-smi: live GPU figures unavailable (nvidia-smi exited with code 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.); heartbeats carry nulls until it answers again",
      "nvidia-smi: live GPU figures are back",
    ]);
  });

  it("samples on its own every interval until stopped", async () => {
    const { fakes, root, report } = await nvidiaRig();
    const monitor = new GpuMonitor({ gpus: report.gpus, intervalMs: 20, env: fakes.env, root });
    const before = fakes.calls("nvidia-smi").length;
    monitor.start();
    await vi.waitFor(() => expect(fakes.calls("nvidia-smi").length).toBeGreaterThan(before + 1), {
      timeout: 10_000,
    });
    monitor.stop();
    expect(
      fakes
        .calls("nvidia-smi")
        .slice(before)
        .every((c) => c.startsWith(SAMPLE)),
    ).toBe(true);
  });

  it("samples rocm-smi with one query", async () => {
    const fakes = fakeTools({
      "rocm-smi": [
        { args: "--showproductname", stdout: fixture("rocm-smi/rocm6-card-series.json.txt") },
        { stdout: fixture("rocm-smi/rocm6-sample.json.txt") },
      ],
    });
    const root = fakeRoot();
    const report = await detectHardware({ env: fakes.env, platform: "linux", root });
    const monitor = new GpuMonitor({ gpus: report.gpus, intervalMs: 60_000, env: fakes.env, root });
    expect(await monitor.sample()).toEqual([
      { index: 0, vram_used_mb: 21504, utilization_pct: 99, temperature_c: 61, power_w: 289 },
      { index: 1, vram_used_mb: 27, utilization_pct: 0, temperature_c: 34, power_w: 12 },
    ]);
    expect(fakes.calls("rocm-smi").slice(1)).toEqual([
      "--showmeminfo vram --showuse --showtemp --showpower --json",
    ]);
  });

  it("samples amdgpu sysfs by reading its files", async () => {
    const env = fakeTools({}).env;
    const root = fakeRoot("sysfs-amdgpu");
    const report = await detectHardware({ env, platform: "linux", root });
    const monitor = new GpuMonitor({ gpus: report.gpus, intervalMs: 60_000, env, root });
    const device = join(root, "sys/class/drm/card1/device");
    writeFileSync(join(device, "mem_info_vram_used"), "12884901888\n");
    writeFileSync(join(device, "gpu_busy_percent"), "100\n");
    expect(await monitor.sample()).toEqual([
      { index: 0, vram_used_mb: 12288, utilization_pct: 100, temperature_c: 45, power_w: 32 },
    ]);
  });

  it("watches nothing for GPUs without live figures (Apple)", () => {
    const monitor = new GpuMonitor({
      gpus: [
        {
          index: 0,
          vendor: "apple",
          model: "Apple M1",
          vram_mb: 10923,
          vram_estimated: true,
          unified_memory: true,
          uuid: null,
          bus_id: null,
          driver: null,
          mig: null,
          source: "system_profiler",
          device: "0",
          vram_used_mb: null,
          utilization_pct: null,
          temperature_c: null,
          power_w: null,
        },
      ],
      intervalMs: 10,
    });
    monitor.start();
    expect(monitor.current()).toEqual([]);
    monitor.stop();
  });
});
