/**
 * Callers who leave together, behind a real tunnel client: the relay resets several streams in
 * one batch of RST_STREAM frames, and the daemon closes them in one read, their `close` events
 * all running before any awaiting request resumes. A queued request could so be handed the
 * slot its neighbour gave back in the same turn in which its own caller left; that slot was then
 * held for good, and once every slot was lost the engine's next callers queued until they gave
 * up (found by cutting 3000 streamed chats at random through a real relay and daemon).
 */
import { once } from "node:events";
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover, type Catalog } from "../../src/discovery/catalog.ts";
import { createGateway, type Gateway } from "../../src/gateway/gateway.ts";
import { silentLogger } from "../../src/log.ts";
import { HEADER_MODEL } from "../../src/protocol/index.ts";
import { HeldEngine } from "../fakes/held-engine.ts";
import { behindTunnel, relayPost, type Tunnelled } from "./tunnelled.ts";

let engine: HeldEngine;
let catalog: Catalog;
let gateway: Gateway;
let tunnel: Tunnelled;
let service: string;

beforeAll(async () => {
  engine = new HeldEngine(["ok"]);
  await engine.start();
  catalog = await discover({
    services: [{ url: engine.url, engine: "openai", maxConcurrent: 1 }],
    autodetect: false,
  });
  service = catalog.services[0]?.name ?? "";
  gateway = createGateway({ catalog: () => catalog, providerName: "rig", log: silentLogger });
  tunnel = await behindTunnel(gateway, { member: "alice" });
});

afterAll(async () => {
  await tunnel.close();
  await Promise.all([engine.stop(), closeUpstreamPools()]);
});

const body = JSON.stringify({ model: "slow", messages: [{ role: "user", content: "hi" }] });

/** A chat the relay opens and does not wait for. */
function open(): http2.ClientHttp2Stream {
  const stream = tunnel.session.request({
    ":method": "POST",
    ":path": "/v1/chat/completions",
    "content-type": "application/json",
    [HEADER_MODEL]: "slow",
  });
  stream.on("error", () => undefined);
  stream.end(body);
  return stream;
}

describe("callers who leave in the same turn", () => {
  it("give back every slot, the one handed over as they left included", async () => {
    for (let round = 0; round < 3; round++) {
      const running = open();
      await once(engine, "request");
      const queued = [open(), open(), open()];
      await expect.poll(() => gateway.load.queued(service)).toBe(3);
      // The resets leave in one write: the daemon reads and closes them in one callback.
      for (const stream of [running, ...queued]) stream.close(http2.constants.NGHTTP2_CANCEL);
      await expect.poll(() => gateway.load.queued(service)).toBe(0);
      await expect.poll(() => gateway.load.inFlight(service)).toBe(0);
    }
    // And the engine's next caller is served.
    const next = relayPost(tunnel.session, { [HEADER_MODEL]: "slow" }, body);
    await once(engine, "request");
    engine.release();
    expect((await next).status).toBe(200);
  });
});
