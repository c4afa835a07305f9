/**
 * VRAM measured on the first run and remembered: a real fake engine under a fake nvidia-smi
 * that reports the engine's own pid (from its starts file) in the recorded compute-apps format;
 * the figure is stored in the state directory, read again by the next daemon, and budgets
 * engines that declare none. The store survives a hostile file.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { EngineManager } from "../../src/engines/manager.ts";
import type { Supervisor } from "../../src/engines/supervisor.ts";
import { vramMeter } from "../../src/engines/vram-meter.ts";
import { MAX_ENTRIES, VRAM_FILE, VramStore, vramKey } from "../../src/engines/vram-store.ts";
import { renderEngines } from "../../src/cli/engines.ts";
import { silentLogger } from "../../src/log.ts";
import { fakeSpec, SETTINGS } from "./helpers.ts";

const GPU0 = "GPU-8c1e0d52-7a3f-b4e1-93d2-5f0a61c7e2b4";
const managers: EngineManager[] = [];
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stopAll()));
});

/** A fake nvidia-smi printing `MIB` MiB on GPU 0 for each pid in `startsFile`, plus blender's. */
function fakeNvidiaSmi(startsFile: string, mib: number): NodeJS.ProcessEnv {
  const dir = mkdtempSync(join(tmpdir(), "club-fake-smi-"));
  writeFileSync(
    join(dir, "nvidia-smi"),
    [
      "#!/bin/sh",
      `echo "40211, /opt/blender/blender, ${GPU0}, 3120"`,
      `while read pid; do echo "$pid, node, ${GPU0}, ${mib}"; done < '${startsFile}'`,
      "",
    ].join("\n"),
    { mode: 0o755 },
  );
  return { PATH: `${dir}:/usr/bin:/bin` };
}

function setup(names: string[], mib: number, store: VramStore, budget = 10_000) {
  // In the state directory: the command (which names the file) must not change between runs.
  const starts = join(dirname(store.path), "starts");
  writeFileSync(starts, "");
  const manager = new EngineManager({
    specs: names.map((n) => fakeSpec(n, ["--starts-file", starts], { gpus: [0] })),
    settings: { ...SETTINGS, budgetMiB: { "0": budget } },
    log: silentLogger,
    meter: vramMeter({
      env: fakeNvidiaSmi(starts, mib),
      timeoutMs: 5000,
      gpus: () => [{ index: 0, uuid: GPU0, totalMiB: 24576 }],
    }),
    vramStore: store,
  });
  managers.push(manager);
  return manager;
}

/** Resolves once the engine's figure is a measured one. */
function measured(engine: Supervisor): Promise<void> {
  return new Promise((resolve) => {
    const check = (): void => {
      if (engine.vramSource !== "measured") return;
      engine.off("change", check);
      resolve();
    };
    engine.on("change", check);
    check();
  });
}

const view = (m: EngineManager, name: string) => m.list().find((e) => e.name === name);

describe("VRAM learned on the first run", () => {
  it("measures an engine without vramMiB once ready, remembers it, and the next daemon uses it", async () => {
    const state = mkdtempSync(join(tmpdir(), "club-state-"));
    const store = await new VramStore(state).load();
    const first = setup(["solo"], 1234, store);
    expect(view(first, "solo")).toMatchObject({ vramMiB: null, vramSource: null });
    const engine = first.get("solo")!;
    await engine.start();
    await measured(engine);
    expect(view(first, "solo")).toMatchObject({ vramMiB: 1234, vramSource: "measured" });
    expect(engine.logs.lines()).toContain("(club-provider: measured 1234 MiB of VRAM)");
    await store.written();
    const saved = JSON.parse(readFileSync(join(state, VRAM_FILE), "utf8")) as {
      engines: Record<string, { vramMiB: number }>;
    };
    expect(saved.engines[vramKey(engine.spec)]?.vramMiB).toBe(1234);
    await first.stopAll();

    // The next daemon knows the figure before the engine ever runs.
    const next = setup(["solo"], 1234, await new VramStore(state).load());
    expect(view(next, "solo")).toMatchObject({ vramMiB: 1234, vramSource: "measured" });
    expect(renderEngines(next.list())).toMatch(/solo\s+stopped\s+1234 MiB \(measured\)/);
    // Another command (here another starts file) is another engine: measured afresh.
    const elsewhere = mkdtempSync(join(tmpdir(), "club-state-"));
    copyFileSync(join(state, VRAM_FILE), join(elsewhere, VRAM_FILE));
    const moved = await new VramStore(elsewhere).load();
    expect(moved.size).toBe(1);
    expect(view(setup(["solo"], 1234, moved), "solo")?.vramSource).toBeNull();
  });

  it("lets two measured engines share a GPU that would run an unmeasured one alone", async () => {
    const state = mkdtempSync(join(tmpdir(), "club-state-"));
    const store = await new VramStore(state).load();
    const manager = setup(["left", "right"], 1000, store, 3000);
    const [left, right] = [manager.get("left")!, manager.get("right")!];
    await left.start();
    await measured(left);
    // Not measured yet, right counts as the whole budget: its start stops left.
    await right.start();
    expect([left.state, manager.evictions.get("left")]).toEqual(["stopped", 1]);
    await measured(right);
    // Both measured, both fit: 1000 + 1000 of 3000.
    await left.start();
    expect([left.state, right.state, manager.evictions.get("left")]).toEqual(["ready", "ready", 1]);
    expect(store.get(vramKey(left.spec))?.vramMiB).toBe(1000);
  });

  it("does not measure an engine whose VRAM is declared", async () => {
    const state = mkdtempSync(join(tmpdir(), "club-state-"));
    const store = await new VramStore(state).load();
    const manager = new EngineManager({
      specs: [fakeSpec("declared", [], { gpus: [0], vramMiB: 500 })],
      settings: SETTINGS,
      log: silentLogger,
      meter: () => Promise.reject(new Error("must not be called")),
      vramStore: store,
    });
    managers.push(manager);
    await manager.get("declared")!.start();
    expect(view(manager, "declared")).toMatchObject({ vramMiB: 500, vramSource: "declared" });
    expect(manager.get("declared")!.logs.lines().join("\n")).not.toContain("VRAM not measured");
    expect(store.size).toBe(0);
  });
});

describe("the remembered VRAM file", () => {
  it("ignores a hostile file (garbage, huge, wrong shapes) and replaces it at the next figure", async () => {
    const state = mkdtempSync(join(tmpdir(), "club-state-"));
    const path = join(state, VRAM_FILE);
    for (const body of [
      "\u0000garbage{",
      "[]",
      JSON.stringify({ engines: null }),
      "x".repeat(300 * 1024),
    ]) {
      writeFileSync(path, body);
      const store = await new VramStore(state).load();
      expect(store.size).toBe(0);
      expect(store.problem).toMatch(/engine-vram\.json ignored/);
    }
    writeFileSync(
      path,
      JSON.stringify({
        engines: {
          good: { vramMiB: 100, measuredAt: 1 },
          negative: { vramMiB: -1, measuredAt: 1 },
          huge: { vramMiB: 1e15, measuredAt: 1 },
          text: { vramMiB: "100", measuredAt: 1 },
        },
      }),
    );
    const store = await new VramStore(state).load();
    expect([store.size, store.get("good")?.vramMiB]).toEqual([1, 100]);
    await store.remember("other", 200, 2);
    expect(
      Object.keys((JSON.parse(readFileSync(path, "utf8")) as { engines: object }).engines),
    ).toEqual(["good", "other"]);
  });

  it("keeps at most MAX_ENTRIES figures, dropping the oldest", async () => {
    const state = mkdtempSync(join(tmpdir(), "club-state-"));
    const store = await new VramStore(state).load();
    const writes: Promise<void>[] = [];
    for (let i = 0; i < MAX_ENTRIES + 10; i++) writes.push(store.remember(`e${i}`, 100 + i, i));
    await Promise.all(writes);
    const again = await new VramStore(state).load();
    expect(again.size).toBe(MAX_ENTRIES);
    expect(again.get("e0")).toBeUndefined();
    expect(again.get(`e${MAX_ENTRIES + 9}`)?.vramMiB).toBe(100 + MAX_ENTRIES + 9);
  });

  it("says so when the state directory cannot be written, and keeps the figure in memory", async () => {
    const state = mkdtempSync(join(tmpdir(), "club-state-"));
    // A file where the directory should be.
    writeFileSync(join(state, "blocked"), "");
    const store = await new VramStore(join(state, "blocked")).load();
    await store.remember("e", 100);
    expect(store.problem).toMatch(/cannot write/);
    expect(store.get("e")?.vramMiB).toBe(100);
  });
});
