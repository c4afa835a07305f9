import { describe, expect, it } from "vitest";
import { detectHardware, manifestGpus, type HardwareReport } from "../../src/hardware/index.ts";
import { fakeRoot, fakeTools, fixture, type FakeRule } from "./fake-tools.ts";

/** A Mac: the profiler prints `profile`; `sysctl iogpu.wired_limit_mb` answers as `limit` says. */
function mac(profile: string, limit: FakeRule): Promise<HardwareReport> {
  const fakes = fakeTools({
    system_profiler: [
      { args: "SPDisplaysDataType SPHardwareDataType", stdout: fixture(`apple/${profile}`) },
    ],
    sysctl: [
      { args: "iogpu.wired_limit_mb", ...limit },
      { args: "machdep.cpu.brand_string", stdout: fixture("apple/sysctl-host-m3-max.txt") },
    ],
    sw_vers: [{ stdout: fixture("apple/sw_vers.txt") }],
  });
  return detectHardware({ env: fakes.env, platform: "darwin", root: fakeRoot() });
}

describe("Apple Silicon through system_profiler and sysctl", () => {
  it("estimates the GPU budget of unified memory when no wired limit is set, and says so", async () => {
    const report = await mac("system_profiler-m3-max.json.txt", { stdout: "0\n" });
    expect(report.gpus).toEqual([
      {
        index: 0,
        vendor: "apple",
        model: "Apple M3 Max",
        vram_mb: 49152,
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
    ]);
    expect(report.notes).toEqual([
      "system_profiler: Apple M3 Max shares 65536 MiB of unified memory; its GPU budget of 49152 MiB is an estimate (macOS's default, about 3/4 of RAM); set it exactly with `sudo sysctl iogpu.wired_limit_mb=<MiB>` or the `gpus` setting",
    ]);
    expect(report.host).toMatchObject({
      os: "macOS 14.5",
      cpu: { model: "Apple M3 Max", cores: 16, threads: 16 },
      ram_mb: 65536,
    });
    expect(manifestGpus(report.gpus)).toEqual([
      { vendor: "apple", model: "Apple M3 Max", vram_gb: 48, index: 0 },
    ]);
  });

  it("takes iogpu.wired_limit_mb exactly when an admin set it", async () => {
    const report = await mac("system_profiler-m1-16gb.json.txt", { stdout: "12288\n" });
    expect(report.gpus.map((g) => [g.model, g.vram_mb, g.vram_estimated])).toEqual([
      ["Apple M1", 12288, false],
    ]);
    expect(report.notes).toEqual([
      "system_profiler: Apple M1 may use 12288 MiB (iogpu.wired_limit_mb)",
    ]);
  });

  it("estimates 2/3 of a small Mac's RAM when the sysctl does not exist (before macOS 14)", async () => {
    const report = await mac("system_profiler-m1-16gb.json.txt", {
      stderr: "sysctl: unknown oid 'iogpu.wired_limit_mb'\n",
      exit: 1,
    });
    expect(report.gpus.map((g) => [g.vram_mb, g.vram_estimated])).toEqual([[10923, true]]);
  });

  it("reads the integrated and discrete GPUs of an Intel Mac", async () => {
    const report = await mac("system_profiler-intel-mac.json.txt", { stdout: "0\n" });
    expect(report.gpus.map((g) => [g.vendor, g.model, g.vram_mb, g.unified_memory])).toEqual([
      ["intel", "Intel UHD Graphics 630", 1536, true],
      ["amd", "AMD Radeon Pro 5500M", 8192, false],
    ]);
    expect(report.notes).toEqual([]);
  });

  it("explains a missing system_profiler without trying other tools", async () => {
    const fakes = fakeTools({});
    const report = await detectHardware({ env: fakes.env, platform: "darwin", root: fakeRoot() });
    expect(report.gpus).toEqual([]);
    expect(report.notes).toEqual([
      "host: CPU and memory unknown: sysctl not found on PATH",
      "host: macOS version unknown: sw_vers not found on PATH",
      "system_profiler not found on PATH",
      "no GPU found: models here run on the CPU; declare GPUs detection cannot see with the `gpus` setting",
    ]);
    expect(report.host).toMatchObject({
      os: null,
      cpu: { model: null, cores: null },
      ram_mb: null,
    });
  });
});
