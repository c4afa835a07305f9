/**
 * The moment after a crash: the engine's sockets are closed but its process's exit is not seen
 * yet. A request arriving then is refused by the dead port; it waits for the exit, the engine
 * starts again, and the request, which the engine never received, is answered (not a 502).
 * The fake engine's `--linger-ms` holds that moment open for seconds.
 */
import http from "node:http";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { Catalog } from "../../src/discovery/catalog.ts";
import { EngineManager } from "../../src/engines/manager.ts";
import { createGateway } from "../../src/gateway/gateway.ts";
import { silentLogger } from "../../src/log.ts";
import { fakeSpec, SETTINGS } from "./helpers.ts";

const manager = new EngineManager({
  specs: [
    fakeSpec("lingering", ["--crash-after", "1", "--linger-ms", "3000"]),
    fakeSpec("deaf", ["--crash-after", "1", "--linger-ms", "600000"]),
  ],
  settings: SETTINGS,
  log: silentLogger,
});
let server: http.Server;
let base = "";

beforeAll(async () => {
  const catalog = (): Catalog => new Catalog(manager.services());
  server = http.createServer(
    createGateway({ catalog, providerName: "rig", log: silentLogger, engines: manager }),
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await Promise.all([manager.stopAll(), closeUpstreamPools()]);
});

async function chat(model: string) {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] }),
  });
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
