/**
 * Measuring an engine's VRAM: the parsers over recorded nvidia-smi and rocm-smi outputs, the
 * meter over fake tools on PATH and a fake process table, hostile tools (garbage, huge numbers,
 * a hang), and the process group of a real engine process.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EngineProcess } from "../../src/engines/process.ts";
import {
  groupPids,
  parseComputeAppsMemory,
  parseShowPidsMemory,
  vramMeter,
  type MeterGpu,
} from "../../src/engines/vram-meter.ts";
import { fakeTools, fixture, type FakeRule } from "../hardware/fake-tools.ts";

const GPU0 = "GPU-8c1e0d52-7a3f-b4e1-93d2-5f0a61c7e2b4";
const GPU1 = "GPU-2f9d4c1a-0b6e-4e8f-a1d3-7c5b9e0f1a22";
const GPUS: MeterGpu[] = [
  { index: 0, uuid: GPU0, totalMiB: 24576 },
  { index: 1, uuid: GPU1, totalMiB: 24576 },
];

/** A `/proc` with these processes, each `[pid, process group]`. */
function fakeProc(processes: [number, number][]): string {
  const root = mkdtempSync(join(tmpdir(), "club-fake-proc-"));
  for (const [pid, pgrp] of processes) {
    mkdirSync(join(root, String(pid)));
    // pid (comm) state ppid pgrp …; a name with spaces and parentheses, as /proc allows.
    writeFileSync(
      join(root, String(pid), "stat"),
      `${pid} (llama (server) x) S 1 ${pgrp} ${pgrp} 0`,
    );
  }
  return root;
}

function meter(tools: Record<string, FakeRule[]>, proc: string, timeoutMs = 5000) {
  return vramMeter({ env: fakeTools(tools).env, timeoutMs, gpus: () => GPUS, proc });
}

const COMPUTE = "--query-compute-apps";

describe("VRAM measurement", () => {
  it("reads MiB per process and GPU from nvidia-smi's compute apps", () => {
    expect(parseComputeAppsMemory(fixture("nvidia-smi/compute-apps.csv"))).toEqual([
      { pid: 1873, gpu: GPU0, mib: 20480 },
      { pid: 40211, gpu: GPU0, mib: 3120 },
      { pid: 40517, gpu: GPU1, mib: 11562 },
    ]);
    expect(parseComputeAppsMemory("1873, x, GPU-a, [N/A]\n1874, x, GPU-a, -5\n")).toEqual([]);
    expect(parseComputeAppsMemory("1873, x, GPU-a, 99999999999999\n")).toEqual([]);
  });

  it("reads VRAM bytes per process from rocm-smi --showpids", () => {
    expect(parseShowPidsMemory(fixture("rocm-smi/showpids.txt"))).toEqual([
      { pid: 3512, bytes: 17179869184 },
      { pid: 40911, bytes: 2147483648 },
    ]);
    expect(parseShowPidsMemory(fixture("rocm-smi/showpids-none.txt"))).toEqual([]);
  });

  it("sums what the engine's process group holds on each of its GPUs, and nothing else", async () => {
    const apps = `${fixture("nvidia-smi/compute-apps.csv")}1900, python3, ${GPU0}, 1024\n`;
    // 1873 and 1900 are the engine's group (led by 1872, the watchdog); 40211 is blender.
    const proc = fakeProc([
      [1872, 1872],
      [1873, 1872],
      [1900, 1872],
      [40211, 40211],
    ]);
    const reading = await meter({ "nvidia-smi": [{ args: COMPUTE, stdout: apps }] }, proc)(
      1872,
      [0],
    );
    expect(reading).toEqual({ perGpu: new Map([[0, 21504]]), mib: 21504 });
  });

  it("falls back to rocm-smi, which names no GPU: an engine on two counts half on each", async () => {
    const proc = fakeProc([[3512, 3500]]);
    const tools = {
      "rocm-smi": [{ args: "--showpids", stdout: fixture("rocm-smi/showpids.txt") }],
    };
    expect(await meter(tools, proc)(3500, [0])).toEqual({
      perGpu: new Map([[0, 16384]]),
      mib: 16384,
    });
    expect(await meter(tools, proc)(3500, [0, 1])).toMatchObject({ mib: 8192 });
  });

  it("gives no figure for an engine that holds nothing, or without any GPU tool", async () => {
    const proc = fakeProc([[5000, 5000]]);
    const apps = fixture("nvidia-smi/compute-apps.csv");
    expect(
      await meter({ "nvidia-smi": [{ args: COMPUTE, stdout: apps }] }, proc)(5000, [0]),
    ).toEqual({
      problem: "none of its 1 process(es) holds memory on GPU 0",
    });
    expect(await meter({}, proc)(5000, [0])).toEqual({
      problem: "neither nvidia-smi nor rocm-smi is on PATH",
    });
    expect(await meter({}, fakeProc([]))(5000, [0])).toEqual({
      problem: "no process in group 5000 (not Linux?)",
    });
  });

  it("believes no garbage, no figure larger than the GPU, and gives up on a tool that hangs", async () => {
    const proc = fakeProc([[1873, 1873]]);
    const garbage = "\u0000\u00ff,,,\nGPU-, 1873, lots\n1873, x, GPU-zz, 1e9\n".repeat(1000);
    expect(
      await meter({ "nvidia-smi": [{ args: COMPUTE, stdout: garbage }] }, proc)(1873, [0]),
    ).toHaveProperty("problem");
    // Parses, but more than the 24 GiB GPU has: not believed.
    const big = `1873, llama-server, ${GPU0}, 9000000\n`;
    expect(
      await meter({ "nvidia-smi": [{ args: COMPUTE, stdout: big }] }, proc)(1873, [0]),
    ).toEqual({
      problem: "GPU 0: 9000000 MiB is more than the GPU has",
    });
    const hung = await meter({ "nvidia-smi": [{ hang: true }] }, proc, 300)(1873, [0]);
    expect(hung).toEqual({ problem: expect.stringMatching(/did not answer within 300 ms/) });
    const failing = await meter(
      { "nvidia-smi": [{ stdout: "NVIDIA-SMI has failed", exit: 9 }] },
      proc,
    )(1873, [0]);
    expect(failing).toEqual({ problem: expect.stringMatching(/exited with code 9/) });
  });

  it("finds every process of a real engine's group: the watchdog, the engine and its worker", async () => {
    const proc = new EngineProcess({
      command: ["sh", "-c", "sleep 1000 & echo started; wait"],
      env: process.env,
    });
    // The watchdog, sh and sleep; poll until sh has started its worker.
    let pids = await groupPids(proc.pid);
    while (pids.size < 3 && proc.running) pids = await groupPids(proc.pid);
    expect(pids.has(proc.pid)).toBe(true);
    expect(pids.size).toBe(3);
    await proc.kill();
    // The killed ones may take a moment to be gone from /proc.
    while (pids.size > 0) pids = await groupPids(proc.pid);
    expect([...pids]).toEqual([]);
  });
});
