import { describe, expect, it } from "vitest";
import ollama from "../../adapters/ollama.ts";
import { findEndpoint } from "../../src/protocol/index.ts";
import { FakeOllama } from "../fakes/ollama.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { chatCall, readAll } from "../fakes/util.ts";
import { embeddingModel, llmModel } from "./chat-calls.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

describeAdapterConformance("ollama", {
  adapter: ollama,
  fake: (options) => new FakeOllama(options),
  models: (model) => (model.type === "embedding" ? embeddingModel(model) : llmModel(model)),
  // Ollama loads models on demand, per request; the server itself is never "loading".
  loading: false,
});

describe("ollama adapter", () => {
  const adapter = ollama();
  const start = fakeUpstreams();

  it("reads capabilities and context from /api/show, the loaded context from /api/ps", async () => {
    const upstream = await start(new FakeOllama());
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "ready",
      reason: 'GET /: "Ollama is running"',
    });
    const info = await adapter.describe(upstream, signal());
    expect(info).toMatchObject({ engine: "ollama", label: "Ollama 0.12.3", maxConcurrent: null });
    // The embedding model (capabilities ["embedding"]) is listed as one, not as a chat model.
    expect(info.models).toEqual([
      {
        id: "qwen3:8b",
        servedId: "qwen3:8b",
        type: "llm",
        inputModalities: ["text"],
        outputModalities: ["text"],
        features: ["streaming", "tool-use"],
        contextLength: 8192,
        quantization: "Q4_K_M",
      },
      {
        id: "gemma3:4b",
        servedId: "gemma3:4b",
        type: "llm",
        inputModalities: ["text", "image"],
        outputModalities: ["text"],
        features: ["streaming", "vision"],
        contextLength: 131072,
        quantization: "Q4_K_M",
      },
      {
        id: "nomic-embed-text:latest",
        servedId: "nomic-embed-text:latest",
        type: "embedding",
        inputModalities: ["text"],
        outputModalities: ["embedding"],
        features: [],
        contextLength: 2048,
        quantization: "Q4_K_M",
      },
    ]);
  });

  it("serves text completions through the OpenAI surface", async () => {
    const fake = new FakeOllama({ tokens: [" once", " upon"] });
    const upstream = await start(fake);
    const model = (await adapter.describe(upstream, signal())).models[0]!;
    const reply = await adapter.execute({
      ...chatCall(upstream, model, {}),
      endpoint: findEndpoint("POST", "/v1/completions")!,
      path: "/v1/completions",
      json: { model: model.servedId, prompt: "Tell me" },
    });
    expect(JSON.parse(await readAll(reply.body)).choices[0].text).toBe(" once upon");
    expect(fake.requests.at(-1)?.path).toBe("/v1/completions");
  });

  it("is not fooled by llama.cpp's Ollama-style routes", async () => {
    const upstream = await start(new FakeLlamaServer());
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "no",
      reason: 'GET / answers 404, not the text "Ollama is running"',
    });
  });
});
