import { describe, expect, it } from "vitest";
import { parseCpuinfo } from "../../src/hardware/host.ts";
import { detectHardware, manifestGpus } from "../../src/hardware/index.ts";
import { fakeRoot, fakeTools, fixture } from "./fake-tools.ts";

describe("a machine without a GPU", () => {
  it("reports the host from /proc and /etc, and no GPU", async () => {
    const report = await detectHardware({
      env: fakeTools({}).env,
      platform: "linux",
      root: fakeRoot("linux", "sysfs-aspeed"),
    });
    expect(report.host).toMatchObject({
      os: "Ubuntu 22.04.4 LTS",
      cpu: { model: "AMD Ryzen 7 5800X3D 8-Core Processor", cores: 8, threads: 16 },
      ram_mb: 64232,
    });
    expect(typeof report.host.hostname).toBe("string");
    expect(report.gpus).toEqual([]);
    expect(report.notes.at(-1)).toBe(
      "no GPU found: models here run on the CPU; declare GPUs detection cannot see with the `gpus` setting",
    );
  });

  it("lists a server's BMC display adapter, found by systeminformation, without advertising it", async () => {
    const fakes = fakeTools({ lspci: [{ stdout: fixture("lspci/aspeed-server.txt") }] });
    const report = await detectHardware({
      env: fakes.env,
      platform: "linux",
      root: fakeRoot("linux", "sysfs-aspeed"),
    });
    expect(report.gpus.map((g) => [g.vendor, g.model, g.vram_mb, g.source])).toEqual([
      ["other", "ASPEED Graphics Family", null, "systeminformation"],
    ]);
    expect(manifestGpus(report.gpus)).toEqual([]);
    expect(report.notes.slice(-2)).toEqual([
      "no GPU found: models here run on the CPU; declare GPUs detection cannot see with the `gpus` setting",
      "GPU 0 (ASPEED Graphics Family) is not advertised: the club counts only NVIDIA, AMD, Apple and Intel GPUs",
    ]);
  });

  it("finds other vendors' GPUs through systeminformation, leaving their memory unknown", async () => {
    const fakes = fakeTools({ lspci: [{ stdout: fixture("lspci/intel-desktop.txt") }] });
    const report = await detectHardware({ env: fakes.env, platform: "linux", root: fakeRoot() });
    expect(report.gpus.map((g) => [g.vendor, g.model, g.vram_mb, g.bus_id])).toEqual([
      ["intel", "Raptor Lake-S GT1 [UHD Graphics 770]", null, "00:02.0"],
    ]);
    expect(report.notes.at(-1)).toBe(
      "GPU 0 (Raptor Lake-S GT1 [UHD Graphics 770]) is not advertised: its memory size is unknown; declare it with the `gpus` setting",
    );
  });

  it("stops systeminformation when a tool it runs hangs", async () => {
    const fakes = fakeTools({ lspci: [{ hang: true }] });
    const report = await detectHardware({
      env: fakes.env,
      platform: "linux",
      root: fakeRoot(),
      timeoutMs: 1000,
    });
    expect(report.gpus).toEqual([]);
    expect(report.notes).toContain(
      "systeminformation: graphics() did not answer within 1000 ms and was stopped",
    );
  });

  it("leaves CPU facts a file does not give as null (ARM without model name or core ids)", () => {
    const arm = [0, 1, 2, 3]
      .map(
        (i) =>
          `processor\t: ${i}\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU part\t: 0xd0c\n`,
      )
      .join("\n");
    expect(parseCpuinfo(arm)).toEqual({ model: null, cores: null, threads: 4 });
  });
});
