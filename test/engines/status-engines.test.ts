import { afterAll, expect, it } from "vitest";
import { startStatusServer } from "../../src/daemon/status-server.ts";
import { EngineManager } from "../../src/engines/manager.ts";
import { silentLogger } from "../../src/log.ts";
import { fakeSpec, SETTINGS, until } from "./helpers.ts";

const manager = new EngineManager({
  specs: [fakeSpec("one")],
  settings: SETTINGS,
  log: silentLogger,
});
const server = await startStatusServer(
  { ready: () => true, status: () => ({}), engineControl: manager.control() },
  0,
  silentLogger,
);
const base = `http://127.0.0.1:${(server!.address() as { port: number }).port}`;
afterAll(async () => {
  server?.close();
  await manager.stopAll();
});
const post = (path: string) =>
  fetch(base + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });

it("lists, starts, stops and shows the logs of managed engines", async () => {
  const listed = (await (await fetch(`${base}/engines`)).json()) as {
    engines: { name: string; state: string }[];
  };
  expect(listed.engines).toEqual([
    expect.objectContaining({
      name: "one",
      state: "stopped",
      models: ["one"],
      gpus: [],
      starts: 0,
    }),
  ]);
  const started = await post("/engines/one/start");
  expect(started.status).toBe(202);
  await until(() => manager.get("one")?.state === "ready");
  const logs = (await (await fetch(`${base}/engines/one/logs`)).json()) as { lines: string[] };
  expect(logs.lines.join("\n")).toMatch(/fake engine one listening/);
  const stopped = await post("/engines/one/stop");
  expect(stopped.status).toBe(200);
  expect(((await stopped.json()) as { engine: { state: string } }).engine.state).toBe("stopped");
});

it("refuses unknown engines, wrong methods and cross-site posts", async () => {
  expect((await post("/engines/nope/start")).status).toBe(404);
  expect((await fetch(`${base}/engines/nope/logs`)).status).toBe(404);
  expect((await fetch(`${base}/engines/one/start`)).status).toBe(405);
  expect((await post("/engines/one/logs")).status).toBe(405);
  const cross = await fetch(`${base}/engines/one/start`, {
    method: "POST",
    headers: { "content-type": "application/json", origin: "http://evil.example" },
    body: "{}",
  });
  expect(cross.status).toBe(403);
  expect((await fetch(`${base}/engines/${"x".repeat(65)}/logs`)).status).toBe(404);
  expect(manager.get("one")?.state).toBe("stopped");
});
