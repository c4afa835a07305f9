/**
 * The gateway behind a real tunnel client, driven by a hostile relay's own HTTP/2 client: it
 * learns a real stream limit, and cannot make the daemon buffer bodies it will refuse anyway,
 * or more bodies at once than the daemon's budget.
 */
import type { ClientHttp2Session, ClientHttp2Stream } from "node:http2";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover, type Catalog } from "../../src/discovery/catalog.ts";
import { createGateway, type Gateway } from "../../src/gateway/gateway.ts";
import { silentLogger } from "../../src/log.ts";
import { HEADER_MODEL } from "../../src/protocol/index.ts";
import { DEFAULT_MAX_STREAMS } from "../../src/transport/h2-settings.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { victim, type HostileRelay } from "../tunnel/hostile-relay.ts";
import { behindTunnel, type Tunnelled } from "./tunnelled.ts";

const KiB = 1024;
const MODEL = "tiny-qwen2-chat";

let llama: FakeLlamaServer;
let catalog: Catalog;
let relay: HostileRelay;
let gateway: Gateway;
let tunnel: Tunnelled;
let session: ClientHttp2Session;

beforeAll(async () => {
  llama = new FakeLlamaServer({ tokens: ["ok"] });
  await llama.start();
  catalog = await discover({ services: [{ url: llama.url }], autodetect: false });
  gateway = createGateway({
    catalog: () => catalog,
    providerName: "rig",
    log: silentLogger,
    maxJsonBytes: 4096 * KiB,
    maxBufferedBytes: 1024 * KiB,
  });
  tunnel = await behindTunnel(gateway);
  ({ relay, session } = tunnel);
});

afterAll(async () => {
  await tunnel.close();
  await Promise.all([llama.stop(), closeUpstreamPools()]);
});

/** Opens a POST stream; the caller writes the body. Resolves the answer when it comes. */
function open(headers: Record<string, string>): {
  stream: ClientHttp2Stream;
  answer: Promise<{ status: number; body: string; headers: Record<string, unknown> }>;
} {
  const stream = session.request({
    ":method": "POST",
    ":path": "/v1/chat/completions",
    "content-type": "application/json",
    ...headers,
  });
  stream.on("error", () => undefined);
  const answer = new Promise<{ status: number; body: string; headers: Record<string, unknown> }>(
    (resolve) => {
      let body = "";
      let head: Record<string, unknown> = {};
      stream.on("response", (h) => (head = h));
      stream.on("data", (d: Buffer) => (body += d.toString()));
      stream.on("close", () =>
        resolve({ status: Number(head[":status"] ?? 0), body, headers: head }),
      );
    },
  );
  return { stream, answer };
}

const chatOf = (bytes: number): Buffer => {
  const shell = JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "" }] });
  return Buffer.from(
    JSON.stringify({
      model: MODEL,
      messages: [{ role: "user", content: "x".repeat(bytes - shell.length) }],
    }),
  );
};

describe("a hostile relay's HTTP/2 client", () => {
  it("is told a real stream limit, not 2^32 - 1", async () => {
    expect(session.remoteSettings.maxConcurrentStreams).toBe(DEFAULT_MAX_STREAMS);
    const small = victim(relay.url, { maxConcurrentStreams: 4 });
    small.start();
    const conn = await relay.connection(1);
    const other = conn.h2();
    conn.welcome();
    await once(other, "remoteSettings");
    expect(other.remoteSettings.maxConcurrentStreams).toBe(4);
    other.destroy();
    small.stop();
  });

  it("gets a model this rig does not serve refused from the header, body unread", async () => {
    const { stream, answer } = open({
      [HEADER_MODEL]: "not-here",
      "content-length": String(3072 * KiB),
    });
    stream.write(Buffer.alloc(256 * KiB, 0x20));
    // The body is far from complete: the answer can only come from the header.
    const res = await answer;
    expect(res.status).toBe(404);
    expect(JSON.parse(res.body)).toMatchObject({ error: { type: "not_found_error" } });
    expect(gateway.buffered.used).toBe(0);
  });

  it("gets 503 once the bodies held in memory reach the budget, without their bodies being read", async () => {
    const first = chatOf(900 * KiB);
    const a = open({ [HEADER_MODEL]: MODEL, "content-length": String(first.length) });
    a.stream.write(first.subarray(0, 800 * KiB));
    await expect.poll(() => gateway.buffered.used).toBe(800 * KiB);

    // A declared length that does not fit is refused at once.
    const b = open({ [HEADER_MODEL]: MODEL, "content-length": String(first.length) });
    b.stream.write(Buffer.alloc(16 * KiB, 0x20));
    const refused = await b.answer;
    expect(refused.status).toBe(503);
    expect(refused.headers["retry-after"]).toBe("1");
    expect(JSON.parse(refused.body)).toMatchObject({
      error: {
        type: "overloaded",
        message: expect.stringMatching(/request bodies as it may \(1048576 bytes\)/) as string,
      },
    });

    // A body of unknown length is refused when its bytes would pass the budget.
    const c = open({ [HEADER_MODEL]: MODEL });
    for (let i = 0; i < 8; i++) c.stream.write(Buffer.alloc(64 * KiB, 0x20));
    const cut = await c.answer;
    expect(cut.status).toBe(503);
    expect(JSON.parse(cut.body)).toMatchObject({ error: { type: "overloaded" } });
    expect(gateway.buffered.used).toBeLessThanOrEqual(1024 * KiB);

    // The first request still completes, and gives its bytes back.
    a.stream.end(first.subarray(800 * KiB));
    expect((await a.answer).status).toBe(200);
    await expect.poll(() => gateway.buffered.used).toBe(0);
  });
});
