/**
 * Two engines on one rig that load the same model (one per GPU): the gateway sends each request
 * to one with room, queues where the wait is shortest, and refuses only when both are full.
 */
import http from "node:http";
import { once } from "node:events";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover, type Catalog } from "../../src/discovery/catalog.ts";
import { Capacity } from "../../src/gateway/capacity.ts";
import { createGateway } from "../../src/gateway/gateway.ts";
import { silentLogger } from "../../src/log.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";

/** Waits for an event on a loaded machine; a timeout here means it never came. */
const patiently = { timeout: 15_000 };
let first: FakeLlamaServer;
let second: FakeLlamaServer;
let server: http.Server;
let base: string;
let catalog: Catalog;
const load = new Capacity({ queueSize: 1 });

beforeAll(async () => {
  first = new FakeLlamaServer({ totalSlots: 1, tokens: ["first"] });
  second = new FakeLlamaServer({ totalSlots: 1, tokens: ["second"] });
  await Promise.all([first.start(), second.start()]);
  catalog = await discover({
    services: [{ url: first.url }, { url: second.url }],
    autodetect: false,
  });
  server = http.createServer(
    createGateway({ catalog: () => catalog, providerName: "rig", log: silentLogger, load }),
  );
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await Promise.all([first.stop(), second.stop(), closeUpstreamPools()]);
});

async function chat(): Promise<{ status: number; text: string }> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "tiny-qwen2-chat", messages: [{ role: "user", content: "hi" }] }),
  });
  return { status: res.status, text: await res.text() };
}

const content = (text: string): unknown =>
  (JSON.parse(text) as { choices: { message: { content: string } }[] }).choices[0]?.message.content;

it("serves one model from whichever of its engines has room", async () => {
  expect(catalog.findAll("tiny-qwen2-chat").map((c) => c.service.upstream.url)).toEqual([
    first.url,
    second.url,
  ]);
  first.pauseGenerations();
  second.pauseGenerations();
  const a = chat();
  await expect.poll(() => first.inFlight, patiently).toBe(1);
  const b = chat();
  await expect.poll(() => second.inFlight, patiently).toBe(1);
  // Both engines busy: the next waits in the first queue, the one after in the second.
  const c = chat();
  await expect.poll(() => load.totalQueued, patiently).toBe(1);
  const d = chat();
  await expect.poll(() => load.totalQueued, patiently).toBe(2);
  const refused = await chat();
  expect(refused.status).toBe(429);
  expect(refused.text).toMatch(/at capacity/);
  first.resumeGenerations();
  second.resumeGenerations();
  const replies = await Promise.all([a, b, c, d]);
  expect(replies.map((r) => r.status)).toEqual([200, 200, 200, 200]);
  expect(replies.map((r) => content(r.text))).toEqual(["first", "second", "first", "second"]);
  expect(first.completed + second.completed).toBe(4);
});
