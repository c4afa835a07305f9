/**
 * The gateway of a paused rig: a request for a paused model gets 429 in the club's envelope
 * with Retry-After (the relay tries another provider on 429), before its body is read.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover, type Catalog } from "../../src/discovery/catalog.ts";
import { PauseState, manualReason } from "../../src/daemon/pause.ts";
import { HEADER_MODEL } from "../../src/protocol/index.ts";
import { silentLogger } from "../../src/log.ts";
import { listenGateway, postChat, type GatewayServer } from "../engines/gateway-server.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";

const MODEL = "tiny-qwen2-chat";
const llama = new FakeLlamaServer({ tokens: ["ok"] });
const state = new PauseState();
let gateway: GatewayServer;
let catalog: Catalog;

beforeAll(async () => {
  await llama.start();
  catalog = await discover({ services: [{ url: llama.url }], autodetect: false });
  gateway = await listenGateway({
    catalog: () => catalog,
    providerName: "rig",
    log: silentLogger,
    paused: (id) => state.model(id),
  });
});

afterAll(async () => {
  gateway.close();
  await Promise.all([llama.stop(), closeUpstreamPools()]);
});

async function chat(headers: Record<string, string> = {}, body?: string) {
  const res = await postChat(gateway.base, MODEL, {
    headers,
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, retry: res.headers.get("retry-after"), body: await res.text() };
}

const chats = () => llama.requests.filter((r) => r.path === "/v1/chat/completions").length;

it("refuses a paused rig's models with 429 and Retry-After, and serves once resumed", async () => {
  expect((await chat()).status).toBe(200);
  state.pause(manualReason("gaming"));
  const served = chats();
  const refused = await chat();
  expect([refused.status, refused.retry]).toEqual([429, "60"]);
  expect(JSON.parse(refused.body)).toEqual({
    error: {
      message: `rig is not serving ${MODEL} now (paused by its owner: gaming): retry later or elsewhere`,
      type: "rate_limit_error",
    },
  });
  // Named by the relay's header, the request is refused before its body is read: not JSON here.
  expect((await chat({ [HEADER_MODEL]: MODEL }, "not json")).status).toBe(429);
  expect(chats()).toBe(served);
  state.resume();
  expect((await chat()).status).toBe(200);
});

it("refuses only the model whose GPU is busy", async () => {
  state.setModels({ [MODEL]: "GPU 0 is in use by another program (blender, pid 7)" });
  const refused = await chat();
  expect(refused.status).toBe(429);
  expect(refused.body).toMatch(/GPU 0 is in use by another program \(blender, pid 7\)/);
  state.setModels({});
  expect((await chat()).status).toBe(200);
});
