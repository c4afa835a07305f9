/**
 * What the gateway counts of an answer it streams: the bytes sent and the tokens generated, for
 * an engine's own stream and for the Responses and Messages streams the gateway's translation
 * writes as text (an answer of non-ASCII text, so characters and bytes differ).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover } from "../../src/discovery/catalog.ts";
import { Capacity } from "../../src/gateway/capacity.ts";
import type { RequestDoneInfo } from "../../src/gateway/gateway.ts";
import { silentLogger } from "../../src/log.ts";
import { listenGateway, type GatewayServer } from "../engines/gateway-server.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";

const TOKENS = ["Grüße", " aus", " Köln", " — ☕"];
const MODEL = "tiny-qwen2-chat";

let llama: FakeLlamaServer;
let gateway: GatewayServer;
const done: RequestDoneInfo[] = [];

beforeAll(async () => {
  llama = new FakeLlamaServer({ tokens: TOKENS });
  await llama.start();
  const catalog = await discover({ services: [{ url: llama.url }], autodetect: false });
  gateway = await listenGateway({
    catalog: () => catalog,
    providerName: "rig",
    log: silentLogger,
    load: new Capacity({ queueSize: 4 }),
    onRequestDone: (info) => done.push(info),
  });
});

afterAll(async () => {
  gateway.close();
  await Promise.all([llama.stop(), closeUpstreamPools()]);
});

/** Posts `body` to `path` and reads the whole answer as bytes, then the gateway's count of it. */
async function streamed(
  path: string,
  body: Record<string, unknown>,
): Promise<{ status: number; bytes: Buffer; info: RequestDoneInfo }> {
  const before = done.length;
  const res = await fetch(gateway.base + path, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: MODEL, stream: true, max_tokens: 16, ...body }),
  });
  const bytes = Buffer.from(await res.arrayBuffer());
  await expect.poll(() => done.length).toBe(before + 1);
  return { status: res.status, bytes, info: done[before]! };
}

describe("the gateway's count of a streamed answer", () => {
  it.each([
    ["/v1/chat/completions", { messages: [{ role: "user", content: "hi" }] }],
    ["/v1/messages", { messages: [{ role: "user", content: "hi" }] }],
    ["/v1/responses", { input: "hi" }],
  ] as const)("counts %s in bytes, not characters", async (path, body) => {
    const { status, bytes, info } = await streamed(path, body);
    expect(status).toBe(200);
    const text = bytes.toString("utf8");
    expect(text).toContain("Köln");
    expect(text.length).toBeLessThan(bytes.length);
    expect(info).toMatchObject({ endpoint: path, status: 200, aborted: false });
    expect(info.bytes).toBe(bytes.length);
  });

  it("counts a translated Messages stream's text events as tokens", async () => {
    const { info } = await streamed("/v1/messages", {
      messages: [{ role: "user", content: "hi" }],
    });
    // One content_block_delta per token; the stream's usage says output_tokens, not
    // completion_tokens, so the events are the count.
    expect(info.tokens).toBe(TOKENS.length);
  });
});
