/** Who uses the GPUs: the parsers over recorded outputs, and the tools run as fakes on PATH. */
import { describe, expect, it } from "vitest";
import {
  listGpuProcesses,
  parseComputeApps,
  parseQueryXml,
  parseShowPids,
} from "../../src/hardware/gpu-processes.ts";
import { fakeTools, fixture } from "./fake-tools.ts";

const GPU0 = "GPU-8c1e0d52-7a3f-b4e1-93d2-5f0a61c7e2b4";
const GPU1 = "GPU-2f9d4c1a-0b6e-4e8f-a1d3-7c5b9e0f1a22";

describe("GPU process lists", () => {
  it("reads nvidia-smi's compute apps with their GPU", () => {
    expect(parseComputeApps(fixture("nvidia-smi/compute-apps.csv"))).toEqual([
      { pid: 1873, name: "/usr/local/bin/llama-server", gpu: GPU0 },
      { pid: 40211, name: "/opt/blender/blender", gpu: GPU0 },
      { pid: 40517, name: "python3", gpu: GPU1 },
    ]);
    expect(parseComputeApps("")).toEqual([]);
    expect(parseComputeApps("No running processes found\n")).toEqual([]);
  });

  it("reads every process of every GPU from nvidia-smi -q -x, graphics ones included", () => {
    expect(parseQueryXml(fixture("nvidia-smi/query-processes.xml"))).toEqual([
      { pid: 2104, name: "/usr/lib/xorg/Xorg", gpu: GPU0, type: "G" },
      { pid: 2391, name: "/usr/bin/gnome-shell", gpu: GPU0, type: "G" },
      { pid: 1873, name: "/usr/local/bin/llama-server", gpu: GPU0, type: "C" },
      {
        pid: 40733,
        name: "/home/owner/.steam/steamapps/common/Game/game.x86_64",
        gpu: GPU1,
        type: "C+G",
      },
    ]);
  });

  it("reads rocm-smi --showpids, which names no GPU", () => {
    expect(parseShowPids(fixture("rocm-smi/showpids.txt"))).toEqual([
      { pid: 3512, name: "llama-server", gpu: null },
      { pid: 40911, name: "blender", gpu: null },
    ]);
    expect(parseShowPids(fixture("rocm-smi/showpids-none.txt"))).toEqual([]);
  });

  it("merges the tools' lists, each process once per GPU", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [
        { args: "--query-compute-apps", stdout: fixture("nvidia-smi/compute-apps.csv") },
        { args: "-q -x", stdout: fixture("nvidia-smi/query-processes.xml") },
      ],
    });
    const report = await listGpuProcesses({ env: fakes.env, timeoutMs: 5000 });
    expect(report.present).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.processes.map((p) => p.pid)).toEqual([1873, 40211, 40517, 2104, 2391, 40733]);
  });

  it("says no tool is present when neither nvidia-smi nor rocm-smi runs", async () => {
    const fakes = fakeTools({});
    expect(await listGpuProcesses({ env: fakes.env, timeoutMs: 5000 })).toEqual({
      present: false,
      processes: [],
      problems: [],
    });
  });

  it("keeps what one tool said when the other fails", async () => {
    const fakes = fakeTools({
      "nvidia-smi": [
        { args: "--query-compute-apps", stdout: fixture("nvidia-smi/compute-apps.csv") },
        { args: "-q -x", stderr: "Unable to determine the device handle", exit: 15 },
      ],
    });
    const report = await listGpuProcesses({ env: fakes.env, timeoutMs: 5000 });
    expect(report.processes).toHaveLength(3);
    expect(report.problems).toEqual([expect.stringMatching(/nvidia-smi exited with code 15/)]);
  });
});
