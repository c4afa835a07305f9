/**
 * The auto-pause's decisions, on an injected clock: which programs count, when their GPU's
 * models pause, when they serve again; and an engine's processes found through a /proc tree.
 */
import http from "node:http";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover, type Catalog } from "../../src/discovery/catalog.ts";
import { AutoPause } from "../../src/daemon/auto-pause.ts";
import { PauseState } from "../../src/daemon/pause.ts";
import { createLogger } from "../../src/log.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { fakeTools } from "../hardware/fake-tools.ts";
import { DEFAULT_AUTO_PAUSE_IGNORE, type AutoPauseConfig } from "../../src/config.ts";
import { enginePids, findEngine, listeningInodes } from "../../src/daemon/engine-pids.ts";
import { GpuUsers, type GpuUsersInput, type PausableService } from "../../src/daemon/gpu-users.ts";
import type { GpuProcess } from "../../src/hardware/gpu-processes.ts";

const GPU0 = "GPU-8c1e0d52-7a3f-b4e1-93d2-5f0a61c7e2b4";
const GPU1 = "GPU-2f9d4c1a-0b6e-4e8f-a1d3-7c5b9e0f1a22";
const settings: AutoPauseConfig = {
  enabled: true,
  afterMs: 5000,
  resumeMs: 60_000,
  pollMs: 5000,
  ignore: DEFAULT_AUTO_PAUSE_IGNORE,
};
const llama: PausableService = { name: "llama", models: ["qwen3-8b"], pids: new Set([100, 101]) };
const comfy: PausableService = { name: "comfy", models: ["flux"], pids: new Set([200]) };
const engines: GpuProcess[] = [
  { pid: 101, name: "/usr/bin/llama-server", gpu: GPU0 },
  { pid: 200, name: "python3", gpu: GPU1 },
];

function input(now: number, others: GpuProcess[], services = [llama, comfy]): GpuUsersInput {
  return {
    report: { present: true, processes: [...engines, ...others], problems: [] },
    services,
    gpuIndex: (uuid) => [GPU0, GPU1].indexOf(uuid),
    now,
  };
}

const blender: GpuProcess = { pid: 4242, name: "/opt/blender/blender", gpu: GPU0 };

describe("GPU auto-pause decisions", () => {
  it("pauses the models of the GPU another program holds, after afterMs, and resumes resumeMs after it left", () => {
    const users = new GpuUsers(() => settings, 1);
    expect(users.poll(input(0, [blender]))).toEqual({});
    expect(users.poll(input(4999, [blender]))).toEqual({});
    const paused = { "qwen3-8b": "GPU 0 is in use by another program (blender, pid 4242)" };
    expect(users.poll(input(5000, [blender]))).toEqual(paused);
    expect(users.poll(input(10_000, []))).toEqual(paused);
    expect(users.poll(input(69_999, []))).toEqual(paused);
    expect(users.poll(input(70_000, []))).toEqual({});
  });

  it("starts the wait again when the program left before afterMs", () => {
    const users = new GpuUsers(() => settings, 1);
    users.poll(input(0, [blender]));
    users.poll(input(4000, []));
    expect(users.poll(input(6000, [blender]))).toEqual({});
    expect(users.poll(input(11_000, [blender]))).toHaveProperty("qwen3-8b");
  });

  it("never counts the engines, the daemon itself or the ignored compositors", () => {
    const users = new GpuUsers(() => settings, 999);
    const desktop: GpuProcess[] = [
      { pid: 2104, name: "/usr/lib/xorg/Xorg", gpu: GPU0 },
      { pid: 2391, name: "/usr/bin/gnome-shell", gpu: GPU1 },
      { pid: 999, name: "node", gpu: GPU0 },
    ];
    expect(users.foreign(input(0, desktop)).size).toBe(0);
    users.poll(input(0, desktop));
    expect(users.poll(input(60_000, desktop))).toEqual({});
  });

  it("counts a graphics-only game, named by the GPU's index", () => {
    const users = new GpuUsers(() => settings, 1);
    const game: GpuProcess = { pid: 40733, name: "/games/game.x86_64", gpu: GPU1 };
    users.poll(input(0, [game]));
    expect(users.poll(input(5000, [game]))).toEqual({
      flux: "GPU 1 is in use by another program (game.x86_64, pid 40733)",
    });
  });

  it("pauses every local model when the engine's GPU is unknown or the tool names none", () => {
    const unknown: PausableService = { name: "kobold", models: ["mythomax"], pids: new Set([300]) };
    const remote: PausableService = { name: "far", models: ["far-model"], pids: null };
    const users = new GpuUsers(() => settings, 1);
    const services = [llama, comfy, unknown, remote];
    users.poll(input(0, [blender], services));
    expect(Object.keys(users.poll(input(5000, [blender], services)))).toEqual([
      "qwen3-8b",
      "mythomax",
    ]);
    const amd = new GpuUsers(() => settings, 1);
    const kfd: GpuProcess = { pid: 40911, name: "blender", gpu: null };
    amd.poll(input(0, [kfd], services));
    expect(amd.poll(input(5000, [kfd], services))).toEqual({
      "qwen3-8b": "a GPU is in use by another program (blender, pid 40911)",
      flux: "a GPU is in use by another program (blender, pid 40911)",
      mythomax: "a GPU is in use by another program (blender, pid 40911)",
    });
  });

  it("keeps a model up that a free engine on another GPU also serves", () => {
    const twin: PausableService = { name: "llama-b", models: ["qwen3-8b"], pids: new Set([200]) };
    const users = new GpuUsers(() => settings, 1);
    users.poll(input(0, [blender], [llama, twin]));
    expect(users.poll(input(5000, [blender], [llama, twin]))).toEqual({});
  });
});

/** A /proc tree: a listening socket on `port` held by pid 4000, whose child is 4001. */
function fakeProc(port: number): string {
  const proc = mkdtempSync(join(tmpdir(), "club-fake-proc-"));
  mkdirSync(join(proc, "net"));
  const header =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  writeFileSync(
    join(proc, "net", "tcp"),
    header +
      `   0: 0100007F:${hex} 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 55501 1 0000000000000000 100 0 0 10 0\n` +
      `   1: 0100007F:${hex} 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 55502 1 0000000000000000 20 4 30 10 -1\n`,
  );
  writeFileSync(join(proc, "net", "tcp6"), header);
  const pid = (n: number, ppid: number, comm: string, links: string[]): void => {
    mkdirSync(join(proc, String(n), "fd"), { recursive: true });
    writeFileSync(join(proc, String(n), "stat"), `${n} (${comm}) S ${ppid} ${n} ${n} 0 -1\n`);
    links.forEach((l, i) => symlinkSync(l, join(proc, String(n), "fd", String(i))));
  };
  pid(1, 0, "systemd", ["/dev/null"]);
  pid(4000, 1, "llama swap", ["/dev/null", "socket:[55501]"]);
  pid(4001, 4000, "llama-server", ["socket:[9]"]);
  pid(4002, 4001, "worker", []);
  pid(4100, 1, "blender", ["socket:[55502]"]);
  return proc;
}

/** The same tree where the listener is another user's: its socket is there, its process is not. */
function hiddenProc(port: number): string {
  const proc = fakeProc(port);
  rmSync(join(proc, "4000"), { recursive: true });
  return proc;
}

describe("engine processes from /proc", () => {
  it("finds the listener of a port and its descendants, not a client of it", async () => {
    const proc = fakeProc(8080);
    expect(await listeningInodes(8080, proc)).toEqual(new Set(["55501"]));
    expect(await enginePids(8080, proc)).toEqual(new Set([4000, 4001, 4002]));
    expect(await enginePids(8081, proc)).toEqual(new Set());
    expect(await findEngine(8080, hiddenProc(8080))).toEqual({ pids: new Set(), hidden: true });
    expect((await findEngine(8081, proc)).hidden).toBe(false);
  });

  it("finds this process as the owner of a server it listens with", async () => {
    const server = http.createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as { port: number };
    try {
      expect(await enginePids(port)).toContain(process.pid);
    } finally {
      server.close();
    }
  });
});

describe("auto-pause timer", () => {
  const llama = new FakeLlamaServer();
  let catalog: Catalog;
  beforeAll(async () => {
    await llama.start();
    catalog = await discover({ services: [{ url: llama.url }], autodetect: false });
  });
  afterAll(async () => {
    await llama.stop();
    await closeUpstreamPools();
  });

  const apps = `4001, llama-server, ${GPU0}, 20480\n4100, /opt/blender/blender, ${GPU0}, 3120\n`;
  function autoPause(proc: string, warnings: string[]): { run: AutoPause; state: PauseState } {
    const fakes = fakeTools({
      "nvidia-smi": [
        { args: "--query-compute-apps", stdout: apps },
        { args: "-q -x", stdout: "" },
      ],
    });
    const state = new PauseState();
    const log = createLogger({
      format: "json",
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          const line = JSON.parse(chunk.toString()) as { level: number; msg: string };
          if (line.level >= 40) warnings.push(line.msg);
          done();
        },
      }),
    });
    const run = new AutoPause({
      settings: () => ({ ...settings, afterMs: 0 }),
      catalog: () => catalog,
      gpus: () => [],
      state,
      log,
      onChange: () => undefined,
      env: fakes.env,
      proc,
    });
    return { run, state };
  }

  it("pauses the engine's model when another program shares its GPU", async () => {
    const port = Number(new URL(llama.url).port);
    const { run, state } = autoPause(fakeProc(port), []);
    await run.tick();
    expect(state.fields().paused_models).toEqual({
      [catalog.ready[0]?.info?.models[0]?.id ?? ""]:
        `GPU ${GPU0} is in use by another program (blender, pid 4100)`,
    });
  });

  it("stays off, and says why, when the engine's process is another user's", async () => {
    const port = Number(new URL(llama.url).port);
    const warnings: string[] = [];
    const { run, state } = autoPause(hiddenProc(port), warnings);
    await run.tick();
    await run.tick();
    expect(state.fields()).toEqual({});
    expect(warnings).toEqual([expect.stringMatching(/^GPU auto-pause is off: the engine at http/)]);
  });
});
