/**
 * The rest of the API clients call, end to end (official clients → relay → tunnel → daemon →
 * fake engines): `GET /v1/models/{id}`, embeddings, rerank, Responses (native on vLLM,
 * translated to chat on SGLang, translated after a 404 on engines too old for it) and Anthropic
 * Messages (translated, with `x-api-key` and Anthropic's error shape).
 */
import Anthropic from "@anthropic-ai/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FakeServer } from "../fakes/fake-server.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { FakeOllama } from "../fakes/ollama.ts";
import { vectorOf } from "../fakes/pooling.ts";
import { FakeSglang } from "../fakes/sglang.ts";
import { FakeVllm } from "../fakes/vllm.ts";
import { ALICE_KEY, startStack, type Stack } from "./stack.ts";

const TOKENS = ["Hello", " from", " the", " rig"];
const CHAT = "meta-llama/Llama-3.1-8B-Instruct"; // SGLang: chat only, no Responses or Messages
const VLLM = "Qwen/Qwen2.5-7B-Instruct"; // vLLM: Responses natively
const EMBED = "BAAI/bge-m3"; // vLLM, task embed
const RERANK = "BAAI/bge-reranker-v2-m3"; // vLLM, task score
const OLLAMA_EMBED = "nomic-embed-text:latest";
const LLAMA_EMBED = "tiny-embed"; // llama-server --embeddings

const sglang = new FakeSglang({ tokens: TOKENS });
const vllm = new FakeVllm({ tokens: TOKENS });
const embed = new FakeVllm({ model: EMBED, task: "embed" });
const rerank = new FakeVllm({ model: RERANK, task: "score" });
const ollama = new FakeOllama({ tokens: TOKENS });
const llamaEmbed = new FakeLlamaServer({ alias: LLAMA_EMBED, embeddings: true });
const FAKES: FakeServer[] = [sglang, vllm, embed, rerank, ollama, llamaEmbed];

let stack: Stack;
let anthropic: Anthropic;

beforeAll(async () => {
  const urls = await Promise.all(FAKES.map((f) => f.start()));
  stack = await startStack(urls);
  anthropic = new Anthropic({ baseURL: stack.relayUrl, apiKey: ALICE_KEY, maxRetries: 0 });
});

afterAll(async () => {
  await stack.stop();
  await Promise.all(FAKES.map((f) => f.stop()));
});

function paths(fake: FakeServer): string[] {
  return fake.requests.map((r) => `${r.method} ${r.path}`);
}

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${stack.relayUrl}${path}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${ALICE_KEY}`,
      "content-type": "application/json",
      ...headers,
    },
    body: JSON.stringify(body),
  });
}

describe("model cards", () => {
  it("lists embedding and rerank models with their own service types", async () => {
    const cards = (await stack.client.models.list()).data as unknown as Record<string, unknown>[];
    const byId = new Map(cards.map((c) => [c.id, c]));
    for (const id of [EMBED, OLLAMA_EMBED, LLAMA_EMBED])
      expect(byId.get(id)).toMatchObject({
        service_type: "embedding",
        input_modalities: ["text"],
        output_modalities: ["embedding"],
        supported_features: [],
      });
    expect(byId.get(RERANK)).toMatchObject({
      service_type: "rerank",
      output_modalities: ["score"],
    });
    expect(byId.get(CHAT)).toMatchObject({ service_type: "llm" });
  });

  it("GET /v1/models/{id} answers the one card, for an id with a slash raw or encoded", async () => {
    for (const path of [`/v1/models/${VLLM}`, `/v1/models/${encodeURIComponent(VLLM)}`]) {
      const res = await fetch(`${stack.relayUrl}${path}`, {
        headers: { authorization: `Bearer ${ALICE_KEY}` },
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ id: VLLM, object: "model", service_type: "llm" });
    }
    expect((await stack.client.models.retrieve(EMBED)).id).toBe(EMBED);
    const missing = await fetch(`${stack.relayUrl}/v1/models/${encodeURIComponent("no/such")}`, {
      headers: { authorization: `Bearer ${ALICE_KEY}` },
    });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      error: { message: 'no online provider serves model "no/such"', type: "no_provider" },
    });
  });
});

describe("embeddings and rerank", () => {
  it("embeddings.create: one string, the client's default base64, decoded to the engine's floats", async () => {
    const reply = await stack.client.embeddings.create({ model: EMBED, input: "hello rig" });
    expect(reply.data).toHaveLength(1);
    expect(reply.data[0]?.embedding).toEqual(vectorOf("hello rig", 32));
    expect(reply.usage).toEqual({ prompt_tokens: 2, total_tokens: 2 });
    const sent = embed.requests.filter((r) => r.path === "/v1/embeddings").at(-1);
    expect(sent?.body).toMatchObject({ model: EMBED, encoding_format: "base64" });
  });

  it("a batch of inputs as floats, and dimensions where the engine has them", async () => {
    const reply = await stack.client.embeddings.create({
      model: EMBED,
      input: ["one", "two", "three"],
      encoding_format: "float",
      dimensions: 8,
    });
    expect(reply.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(reply.data.map((d) => d.embedding)).toEqual(
      ["one", "two", "three"].map((t) => vectorOf(t, 8)),
    );
  });

  it("serves Ollama's and llama-server's embedding models", async () => {
    const a = await stack.client.embeddings.create({ model: OLLAMA_EMBED, input: "x" });
    expect(a.data[0]?.embedding).toEqual(vectorOf("x", 48));
    const b = await stack.client.embeddings.create({ model: LLAMA_EMBED, input: "x" });
    expect(b.data[0]?.embedding).toEqual(vectorOf("x", 64));
  });

  it("POST /v1/rerank answers the engine's ranking and usage", async () => {
    const res = await post("/v1/rerank", {
      model: RERANK,
      query: "gpu rig",
      documents: ["a cat", "my gpu rig at home", "a rig"],
      top_n: 2,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: { index: number }[]; usage: unknown };
    expect(body.results.map((r) => r.index)).toEqual([1, 2]);
    expect(body.usage).toEqual({ prompt_tokens: 11, total_tokens: 11 });
  });

  it("a chat-only model gets 404 no_provider for embeddings, and no engine is asked", async () => {
    const before = paths(sglang).length;
    const res = await post("/v1/embeddings", { model: CHAT, input: "hi" });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("no_provider");
    expect(
      paths(sglang)
        .slice(before)
        .filter((p) => p.startsWith("POST")),
    ).toEqual([]);
  });
});

describe("Responses", () => {
  it("passes through to vLLM, which serves it natively", async () => {
    const reply = await stack.client.responses.create({ model: VLLM, input: "hi" });
    expect(reply.output_text).toBe("native: hi");
    expect(paths(vllm)).toContain("POST /v1/responses");
  });

  it("is translated to chat for SGLang, with usage", async () => {
    const reply = await stack.client.responses.create({
      model: CHAT,
      instructions: "Be terse.",
      input: "hi",
      max_output_tokens: 16,
    });
    expect(reply.object).toBe("response");
    expect(reply.status).toBe("completed");
    expect(reply.output_text).toBe("Hello from the rig");
    expect(reply.usage?.output_tokens).toBeGreaterThan(0);
    const sent = sglang.requests.filter((r) => r.path === "/v1/chat/completions").at(-1);
    expect(sent?.body).toMatchObject({
      model: CHAT,
      max_tokens: 16,
      messages: [
        { role: "system", content: "Be terse." },
        { role: "user", content: "hi" },
      ],
    });
    expect(paths(sglang)).not.toContain("POST /v1/responses");
  });

  it("streams the Responses event sequence, translated", async () => {
    const stream = await stack.client.responses.create({ model: CHAT, input: "hi", stream: true });
    const types: string[] = [];
    let text = "";
    let usage: unknown;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") text += event.delta;
      if (event.type === "response.completed") usage = event.response.usage;
    }
    expect(text).toBe("Hello from the rig");
    expect(types.slice(0, 4)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
    ]);
    expect(types.slice(-4)).toEqual([
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(usage).toMatchObject({ output_tokens: 4 });
  });

  it("returns a function_call item for a forced tool", async () => {
    const reply = await stack.client.responses.create({
      model: CHAT,
      input: "Weather in Lyon?",
      tools: [
        {
          type: "function",
          name: "get_weather",
          parameters: { type: "object", properties: { city: { type: "string" } } },
          strict: false,
        },
      ],
      tool_choice: { type: "function", name: "get_weather" },
    });
    expect(reply.output).toMatchObject([
      { type: "function_call", name: "get_weather", call_id: "call_0", arguments: "{}" },
    ]);
  });

  it("is translated after a 404 from an engine that predates it (Ollama 0.12)", async () => {
    const reply = await stack.client.responses.create({ model: "qwen3:8b", input: "hi" });
    expect(reply.output_text).toBe("Hello from the rig");
    expect(paths(ollama)).toContain("POST /v1/responses");
  });

  it("refuses an image on a private address in Responses and Messages, as on chat", async () => {
    const image = "http://127.0.0.1:9/secret.png";
    const before = paths(sglang).filter((p) => p.startsWith("POST")).length;
    const responses = await post("/v1/responses", {
      model: CHAT,
      input: [{ role: "user", content: [{ type: "input_image", image_url: image }] }],
    });
    expect(responses.status).toBe(400);
    const messages = await post("/v1/messages", {
      model: CHAT,
      max_tokens: 4,
      messages: [
        { role: "user", content: [{ type: "image", source: { type: "url", url: image } }] },
      ],
    });
    expect(messages.status).toBe(400);
    expect(((await messages.json()) as { type: string }).type).toBe("error");
    // Re-scans may probe the engine meanwhile (GETs); no call reached it.
    expect(paths(sglang).filter((p) => p.startsWith("POST")).length).toBe(before);
  });

  it("refuses previous_response_id and store: true with a clear 400", async () => {
    for (const extra of [{ previous_response_id: "resp_1" }, { store: true }]) {
      const res = await post("/v1/responses", { model: CHAT, input: "hi", ...extra });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { error: { type: string; message: string } };
      expect(body.error.type).toBe("invalid_request_error");
      expect(body.error.message).toMatch(/stores no responses/);
    }
  });
});

describe("Anthropic Messages", () => {
  it("messages.create is translated to chat, with the key as x-api-key", async () => {
    const before = sglang.requests.length;
    const reply = await anthropic.messages.create({
      model: CHAT,
      max_tokens: 32,
      system: "Be terse.",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(reply.type).toBe("message");
    expect(reply.content).toEqual([{ type: "text", text: "Hello from the rig" }]);
    expect(reply.stop_reason).toBe("end_turn");
    expect(reply.usage.output_tokens).toBeGreaterThan(0);
    const sent = sglang.requests.slice(before).find((r) => r.path === "/v1/chat/completions");
    expect(sent?.body).toMatchObject({
      max_tokens: 32,
      messages: [
        { role: "system", content: "Be terse." },
        { role: "user", content: "hi" },
      ],
    });
    // The member's key never reaches the rig.
    expect(sent?.headers["x-api-key"]).toBeUndefined();
  });

  it("messages.stream gives Anthropic's event types in order", async () => {
    const stream = anthropic.messages.stream({
      model: CHAT,
      max_tokens: 32,
      messages: [{ role: "user", content: "hi" }],
    });
    const types: string[] = [];
    stream.on("streamEvent", (event) => types.push(event.type));
    const message = await stream.finalMessage();
    expect(message.content).toMatchObject([{ type: "text", text: "Hello from the rig" }]);
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.output_tokens).toBeGreaterThan(0);
    expect(types).toEqual([
      "message_start",
      "content_block_start",
      ...TOKENS.map(() => "content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
  });

  it("answers a forced tool with a tool_use block", async () => {
    const reply = await anthropic.messages.create({
      model: CHAT,
      max_tokens: 32,
      messages: [{ role: "user", content: "Weather in Lyon?" }],
      tools: [{ name: "get_weather", input_schema: { type: "object", properties: {} } }],
      tool_choice: { type: "tool", name: "get_weather" },
    });
    expect(reply.stop_reason).toBe("tool_use");
    expect(reply.content).toEqual([
      { type: "tool_use", id: "call_0", name: "get_weather", input: {} },
    ]);
  });

  it("gives its errors in Anthropic's shape: no provider, a bad key, no token counting", async () => {
    const missing = await post("/v1/messages", { model: "nope", max_tokens: 1, messages: [] });
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({
      type: "error",
      error: {
        type: "not_found_error",
        message: 'no online provider serves model "nope" for /v1/messages',
      },
    });
    const badKey = await fetch(`${stack.relayUrl}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": "sk-wrong-key-0123456789", "content-type": "application/json" },
      body: "{}",
    });
    expect(badKey.status).toBe(401);
    expect(((await badKey.json()) as { error: { type: string } }).error.type).toBe(
      "authentication_error",
    );
    const count = await post("/v1/messages/count_tokens", { model: CHAT, messages: [] });
    expect(count.status).toBe(404);
    expect(await count.json()).toMatchObject({
      type: "error",
      error: { type: "not_found_error" },
    });
    await expect(
      anthropic.messages.create({ model: "nope", max_tokens: 1, messages: [] }),
    ).rejects.toBeInstanceOf(Anthropic.NotFoundError);
  });

  it("x-api-key is the member's key on the OpenAI endpoints too; errors there stay OpenAI's", async () => {
    const res = await fetch(`${stack.relayUrl}/v1/models`, { headers: { "x-api-key": ALICE_KEY } });
    expect(res.status).toBe(200);
    const missing = await post("/v1/chat/completions", { model: "nope", messages: [] });
    expect(((await missing.json()) as { error: { type: string } }).error.type).toBe("no_provider");
  });
});
