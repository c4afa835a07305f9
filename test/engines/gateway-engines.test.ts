/**
 * Managed engines behind the gateway: a request for a stopped engine's model starts it, VRAM
 * lets only one of two fit (the idle one is evicted, a busy one never), a start that fails is
 * 503 with Retry-After and the engine's words, a crash mid-request is 502.
 */
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { Catalog } from "../../src/discovery/catalog.ts";
import { EngineManager } from "../../src/engines/manager.ts";
import { DaemonMetrics } from "../../src/daemon/daemon-metrics.ts";
import { silentLogger } from "../../src/log.ts";
import { managedGateway } from "./gateway-server.ts";
import { fakeSpec, SETTINGS } from "./helpers.ts";

const manager = new EngineManager({
  specs: [
    fakeSpec("alpha", [], { gpus: [0], vramMiB: 800 }),
    fakeSpec("beta", [], { gpus: [0], vramMiB: 800 }),
    fakeSpec("broken", ["--fail-start"]),
    fakeSpec("crashy", ["--crash-after", "1"]),
  ],
  settings: { ...SETTINGS, budgetMiB: { "0": 1000 }, maxFailures: 2 },
  log: silentLogger,
});
const catalog = (): Catalog => new Catalog(manager.services());
const gateway = managedGateway(manager);

async function chat(model: string) {
  const res = await gateway.chat(model);
  return { status: res.status, retry: res.headers.get("retry-after"), body: await res.text() };
}
const state = (name: string) => manager.get(name)?.state;
const advertised = (id: string) =>
  catalog()
    .manifest("rig", "h")
    .hosts[0]?.services.flatMap((s) => s.models)
    .find((m) => m.id === id);

describe("managed engines behind the gateway", () => {
  it("advertises stopped engines with their state, and starts one on the first request", async () => {
    expect(advertised("alpha")).toMatchObject({
      id: "alpha",
      state: "stopped",
      context_length: 256,
    });
    const first = await chat("alpha");
    expect(first.status).toBe(200);
    expect(first.body).toContain("alpha");
    expect(state("alpha")).toBe("ready");
    expect(advertised("alpha")?.state).toBe("ready");
  });

  it("stops the idle engine to make room on the GPU for another", async () => {
    const res = await chat("beta");
    expect(res.status).toBe(200);
    expect(res.body).toContain("beta");
    expect([state("alpha"), state("beta")]).toEqual(["stopped", "ready"]);
    expect(manager.evictions.get("alpha")).toBe(1);
    expect(manager.get("alpha")?.stops.evicted).toBe(1);
  });

  it("never stops an engine with a request in flight: 503 with Retry-After instead", async () => {
    const lease = await manager.acquire("beta", new AbortController().signal)!;
    const res = await chat("alpha");
    expect([res.status, res.retry]).toEqual([503, "10"]);
    expect(JSON.parse(res.body)).toEqual({
      error: {
        type: "overloaded",
        message: "GPU 0 has no room for alpha (800 MiB of 1000): in use by beta (1 running)",
      },
    });
    expect(state("beta")).toBe("ready");
    expect(state("alpha")).toBe("stopped");
    lease();
    expect((await chat("alpha")).status).toBe(200);
  });

  it("answers 503 with the engine's words when it fails to start, then withdraws it", async () => {
    const res = await chat("broken");
    expect(res.status).toBe(503);
    expect(Number(res.retry)).toBeGreaterThanOrEqual(1);
    expect(res.body).toMatch(/broken failed to start: .*fake refuses to start/);
    expect((await chat("broken")).status).toBe(503);
    expect(manager.get("broken")?.withdrawn).toBe(true);
    // Withdrawn: no longer advertised, so the gateway no longer knows the model.
    expect(advertised("broken")).toBeUndefined();
    expect((await chat("broken")).status).toBe(404);
    expect(manager.list().find((e) => e.name === "broken")).toMatchObject({
      state: "failed",
      withdrawn: true,
      failures: 2,
      reason: expect.stringMatching(/exit code 1/),
    });
  });

  it("answers 502 when the engine dies mid-request, and starts it again on the next", async () => {
    expect((await chat("crashy")).status).toBe(200);
    const engine = manager.get("crashy")!;
    const crashed = once(engine, "crash");
    const cut = await chat("crashy");
    expect(cut.status).toBe(502);
    expect(cut.body).toContain("upstream_error");
    // The broken connection may reach the gateway a moment before the process's exit does.
    await crashed;
    expect(engine.state).toBe("failed");
    const again = await chat("crashy");
    expect(again.status).toBe(200);
    expect(manager.get("crashy")?.starts).toBe(2);
  });

  it("counts starts, stops, evictions and cold-start seconds per model in /metrics", () => {
    const metrics = new DaemonMetrics({
      config: { name: "rig" },
      tunnels: [],
      heartbeat: () => ({ in_flight: 0, queued: 0, services: {}, gpus: [] }),
      engines: manager,
    });
    const text = metrics.render();
    expect(text).toContain('club_provider_engine_starts_total{engine="alpha"} 2');
    expect(text).toContain('club_provider_engine_stops_total{engine="alpha",reason="evicted"} 1');
    expect(text).toContain('club_provider_engine_evictions_total{engine="alpha"} 1');
    expect(text).toContain('club_provider_engine_failures_total{engine="broken"} 2');
    expect(text).toContain('club_provider_engine_cold_start_seconds_count{model="alpha"} 2');
    expect(text).toMatch(/club_provider_engine_cold_start_seconds_sum\{model="beta"\} \d/);
  });
});
