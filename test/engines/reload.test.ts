/**
 * A changed `engines` setting applied to running engines (what SIGHUP does), behind a real
 * gateway: added engines appear, unchanged ones keep running, a removed or changed engine
 * finishes the stream it is sending before it is stopped, and requests that arrive meanwhile
 * wait for the new engine.
 */
import { mkdtempSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { Catalog } from "../../src/discovery/catalog.ts";
import { EngineManager } from "../../src/engines/manager.ts";
import type { EngineSpec } from "../../src/engines/schema.ts";
import { silentLogger } from "../../src/log.ts";
import { managedGateway } from "./gateway-server.ts";
import { alive, fakeSpec, SETTINGS, until } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "club-reload-"));
const hold = join(dir, "hold");
const startsOf = (name: string) => join(dir, `${name}.starts`);
const pids = (name: string): number[] =>
  readFileSync(startsOf(name), "utf8").split("\n").filter(Boolean).map(Number);
const spec = (name: string, ...extra: string[]): EngineSpec =>
  fakeSpec(name, ["--starts-file", startsOf(name), "--hold-file", hold, ...extra]);

const manager = new EngineManager({
  specs: [spec("keep"), spec("moving"), spec("leaving"), spec("slow", "--load-ms", "60000")],
  settings: SETTINGS,
  log: silentLogger,
});
const catalog = (): Catalog => new Catalog(manager.services());
beforeAll(() => {
  for (const name of ["keep", "moving", "leaving", "slow", "fresh"])
    writeFileSync(startsOf(name), "");
});
const gateway = managedGateway(manager);

const request = (model: string, stream = false) => gateway.chat(model, { stream });
const chat = async (model: string) => {
  const res = await request(model);
  return { status: res.status, body: await res.text() };
};
const advertised = (id: string) =>
  catalog()
    .manifest("rig", "h")
    .hosts[0]?.services.flatMap((s) => s.models)
    .find((m) => m.id === id);

/** A stream held open by the hold file: resolves once the engine's lease is taken. */
async function heldStream(model: string): Promise<Response> {
  writeFileSync(hold, "");
  const engine = manager.get(model)!;
  const res = await request(model, true);
  expect(res.status).toBe(200);
  await until(() => engine.inFlight === 1);
  return res;
}

describe("reloading the engines setting", () => {
  it("adds new engines, advertised while stopped, and leaves unchanged ones running", async () => {
    expect((await chat("keep")).status).toBe(200);
    const [pid] = pids("keep");
    const changes = manager.apply([
      spec("keep"),
      spec("moving"),
      spec("leaving"),
      spec("slow", "--load-ms", "60000"),
      spec("fresh"),
    ]);
    expect(changes).toEqual({ added: ["fresh"], removed: [], changed: [] });
    expect(advertised("fresh")).toMatchObject({ id: "fresh", state: "stopped" });
    expect((await chat("fresh")).body).toContain("fresh");
    expect([manager.get("keep")?.state, pids("keep")]).toEqual(["ready", [pid]]);
    expect((await chat("keep")).status).toBe(200);
  });

  it("restarts a changed engine only after its stream in flight ended; requests meanwhile wait for the new one", async () => {
    expect((await chat("moving")).status).toBe(200);
    const old = manager.get("moving")!;
    const [oldPid] = pids("moving");
    const stream = await heldStream("moving");
    const changes = manager.apply([
      spec("keep"),
      spec("moving", "--token-delay-ms", "1"),
      spec("leaving"),
      spec("slow", "--load-ms", "60000"),
      spec("fresh"),
    ]);
    expect(changes).toEqual({ added: [], removed: [], changed: ["moving"] });
    const waiting = chat("moving");
    // The old one still serves its stream; the new one has not started.
    expect([old.state, alive(oldPid!), manager.get("moving")?.starts]).toEqual(["ready", true, 0]);
    unlinkSync(hold);
    const text = await stream.text();
    expect(text).toContain("moving");
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(manager.get("moving")).not.toBe(old);
    expect(manager.get("moving")?.starts).toBe(1);
    expect(pids("moving")).toHaveLength(2);
    await manager.reloaded();
    expect([old.state, alive(oldPid!)]).toEqual(["stopped", false]);
  });

  it("stops a removed engine once its stream ended; its model is withdrawn at once", async () => {
    expect((await chat("leaving")).status).toBe(200);
    const old = manager.get("leaving")!;
    const [pid] = pids("leaving");
    const stream = await heldStream("leaving");
    const changes = manager.apply([
      spec("keep"),
      spec("moving", "--token-delay-ms", "1"),
      spec("slow", "--load-ms", "60000"),
      spec("fresh"),
    ]);
    expect(changes).toEqual({ added: [], removed: ["leaving"], changed: [] });
    expect(advertised("leaving")).toBeUndefined();
    expect((await chat("leaving")).status).toBe(404);
    // A request that still found it (an older catalog) is refused 503, so the relay goes elsewhere.
    await expect(manager.acquire("leaving", new AbortController().signal)).rejects.toMatchObject({
      code: "engine_removed",
      retryAfter: 60,
    });
    expect([old.state, alive(pid!)]).toEqual(["ready", true]);
    unlinkSync(hold);
    expect((await stream.text()).trimEnd().endsWith("data: [DONE]")).toBe(true);
    await manager.reloaded();
    expect(alive(pid!)).toBe(false);
    expect(manager.list().map((e) => e.name)).toEqual(["keep", "moving", "slow", "fresh"]);
    expect(manager.acquire("leaving", new AbortController().signal)).toBeUndefined();
  });

  it("moves requests waiting for a changed engine's start over to the new engine", async () => {
    const old = manager.get("slow")!;
    const waiting = chat("slow");
    await until(() => old.state === "starting" && pids("slow").length === 1);
    const changes = manager.apply([
      spec("keep"),
      spec("moving", "--token-delay-ms", "1"),
      spec("slow"),
      spec("fresh"),
    ]);
    expect(changes.changed).toEqual(["slow"]);
    const answer = await waiting;
    expect(answer.status).toBe(200);
    expect(answer.body).toContain("slow");
    expect([old.state, manager.get("slow")?.state]).toEqual(["stopped", "ready"]);
    expect(pids("slow")).toHaveLength(2);
  });
});

describe("reloading the shared engine settings", () => {
  it("applies a new VRAM budget to the engines already running, without restarting them", async () => {
    const gpu = (name: string) => fakeSpec(name, [], { gpus: [0], vramMiB: 600 });
    const local = new EngineManager({
      specs: [gpu("g1"), gpu("g2")],
      settings: { ...SETTINGS, budgetMiB: { "0": 1000 } },
      log: silentLogger,
    });
    try {
      await local.get("g1")!.start();
      await local.get("g2")!.start();
      // 600 + 600 > 1000: g2's start stopped g1.
      expect([local.get("g1")?.state, local.evictions.get("g1")]).toEqual(["stopped", 1]);
      const changes = local.apply([gpu("g1"), gpu("g2")], {
        ...SETTINGS,
        budgetMiB: { "0": 2000 },
      });
      expect(changes).toEqual({ added: [], removed: [], changed: [] });
      expect(local.vram.budget(0)).toBe(2000);
      await local.get("g1")!.start();
      expect([local.get("g1")?.state, local.get("g2")?.state]).toEqual(["ready", "ready"]);
      expect([local.evictions.get("g1"), local.get("g2")?.starts]).toEqual([1, 1]);
    } finally {
      await local.stopAll();
    }
  });
});
