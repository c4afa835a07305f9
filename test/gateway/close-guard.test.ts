/**
 * A fault in what the gateway does after an answer (its response's `close` handler: releasing,
 * counting, reporting) must not escape the handler: there it would be an uncaught exception,
 * which ends the daemon and its tunnel. Here the report throws, behind a real tunnel client.
 */
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover } from "../../src/discovery/catalog.ts";
import { createGateway } from "../../src/gateway/gateway.ts";
import { createLogger } from "../../src/log.ts";
import { HEADER_MODEL } from "../../src/protocol/index.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { behindTunnel, relayPost, type Tunnelled } from "./tunnelled.ts";

const MODEL = "tiny-qwen2-chat";
let engine: FakeLlamaServer;
let tunnel: Tunnelled;
const lines: string[] = [];
let reports = 0;

beforeAll(async () => {
  engine = new FakeLlamaServer({ tokens: ["ok"] });
  await engine.start();
  const catalog = await discover({ services: [{ url: engine.url }], autodetect: false });
  const log = createLogger({
    format: "json",
    level: "info",
    destination: new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(chunk.toString());
        callback();
      },
    }),
  });
  const gateway = createGateway({
    catalog: () => catalog,
    providerName: "rig",
    log,
    onRequestDone: () => {
      reports++;
      if (reports === 1) throw new Error("the usage book is broken");
    },
  });
  tunnel = await behindTunnel(gateway, { member: "alice" });
});

afterAll(async () => {
  await tunnel.close();
  await Promise.all([engine.stop(), closeUpstreamPools()]);
});

/** A chat request as the relay sends it over the tunnel. */
const chat = (): Promise<{ status: number; body: string }> =>
  relayPost(
    tunnel.session,
    { [HEADER_MODEL]: MODEL },
    JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
  );

describe("a throw in the gateway's close handler", () => {
  it("is logged, and the tunnel stays up and answers the next request", async () => {
    expect((await chat()).status).toBe(200);
    await expect.poll(() => reports).toBe(1);
    await expect
      .poll(() => lines.find((l) => l.includes("after a request, reporting it done failed")))
      .toContain("the usage book is broken");
    const next = await chat();
    expect(next.status).toBe(200);
    expect(JSON.parse(next.body)).toMatchObject({ object: "chat.completion" });
    await expect.poll(() => reports).toBe(2);
    expect(tunnel.client.state).toBe("connected");
    expect(tunnel.relay.connections.length).toBe(1);
  });
});
