/**
 * The moment after a crash: the engine's sockets are closed but its process's exit is not seen
 * yet. A request arriving then is refused by the dead port; it waits for the exit, the engine
 * starts again, and the request, which the engine never received, is answered (not a 502).
 * The fake engine's `--linger-ms` holds that moment open for seconds.
 */
import { describe, expect, it } from "vitest";
import { EngineManager } from "../../src/engines/manager.ts";
import { silentLogger } from "../../src/log.ts";
import { managedGateway } from "./gateway-server.ts";
import { fakeSpec, SETTINGS } from "./helpers.ts";

const manager = new EngineManager({
  specs: [
    fakeSpec("lingering", ["--crash-after", "1", "--linger-ms", "3000"]),
    fakeSpec("deaf", ["--crash-after", "1", "--linger-ms", "600000"]),
  ],
  settings: SETTINGS,
  log: silentLogger,
});
const gateway = managedGateway(manager);

async function chat(model: string) {
  const res = await gateway.chat(model);
  return { status: res.status, body: await res.text() };
}

describe("a request right after a crash", () => {
  it("waits for the crashed engine's exit and is served by the engine started again", async () => {
    expect((await chat("lingering")).status).toBe(200);
    const engine = manager.get("lingering")!;
    // The request in flight at the crash is cut: 502.
    const cut = await chat("lingering");
    expect(cut.status).toBe(502);
    // Its sockets are gone, its process not yet: the daemon still holds it ready.
    expect([engine.state, engine.pid === null]).toEqual(["ready", false]);
    const next = await chat("lingering");
    expect(next.status).toBe(200);
    expect(next.body).toContain("lingering");
    expect([engine.starts, engine.failures, manager.refusalRetries]).toEqual([2, 1, 1]);
  });

  it("is a 502 when the engine refuses it but its process goes on running", async () => {
    expect((await chat("deaf")).status).toBe(200);
    const engine = manager.get("deaf")!;
    expect((await chat("deaf")).status).toBe(502);
    const pid = engine.pid;
    const refused = await chat("deaf");
    expect(refused.status).toBe(502);
    expect(refused.body).toMatch(/cannot reach .* \(ECONNREFUSED\)/);
    // Not restarted, not killed: the owner's to look at.
    expect([engine.starts, engine.pid, engine.state]).toEqual([1, pid, "ready"]);
  });
});
