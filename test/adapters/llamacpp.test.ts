import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Upstream } from "../../adapters/adapter.ts";
import llamacpp from "../../adapters/llamacpp.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { FakeLlamaServer, type FakeLlamaOptions } from "../fakes/llama-server.ts";
import { FakeOpenAIServer } from "../fakes/openai-server.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { chatCall, readAll, readUntil } from "../fakes/util.ts";
import { describeAdapterConformance } from "./conformance.ts";

describeAdapterConformance("llamacpp", {
  adapter: llamacpp,
  fake: (options) => new FakeLlamaServer(options),
});

describe("llamacpp adapter", () => {
  const adapter = llamacpp();
  const running: FakeServer[] = [];
  const signal = (): AbortSignal => AbortSignal.timeout(5_000);

  async function start(fake: FakeServer, apiKey?: string): Promise<Upstream> {
    running.push(fake);
    const url = await fake.start();
    return apiKey ? { url, apiKey } : { url };
  }
  const llama = (options: FakeLlamaOptions = {}): Promise<Upstream> =>
    start(new FakeLlamaServer(options), options.apiKey);

  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());

  it("describes the recorded build: id from the path, context from /props, slots, tools", async () => {
    const info = await adapter.describe(await llama(), signal());
    expect(info).toEqual({
      engine: "llamacpp",
      label: "llama.cpp b1-80fb11a",
      maxConcurrent: 2,
      models: [
        {
          id: "tiny-qwen2-chat",
          servedId: "/models/tiny-qwen2-chat.gguf",
          type: "llm",
          inputModalities: ["text"],
          outputModalities: ["text"],
          features: ["streaming", "tool-use"],
          contextLength: 256,
          quantization: "F16",
        },
      ],
    });
  });

  it("takes context and slots from /props, and the alias as id", async () => {
    const info = await adapter.describe(
      await llama({ nCtx: 4096, totalSlots: 4, alias: "qwen-mini" }),
      signal(),
    );
    expect(info.maxConcurrent).toBe(4);
    expect(info.models[0]).toMatchObject({
      id: "qwen-mini",
      servedId: "qwen-mini",
      contextLength: 4096,
    });
  });

  it("reports vision and audio from /props modalities, and no tool-use without the template cap", async () => {
    const info = await adapter.describe(
      await llama({ vision: true, audio: true, supportsTools: false }),
      signal(),
    );
    expect(info.models[0]).toMatchObject({
      features: ["streaming", "vision"],
      inputModalities: ["text", "image", "audio"],
    });
  });

  it("says a key is needed, or that the configured one is refused", async () => {
    const { url } = await llama({ apiKey: "sk-harness-test" });
    expect(await adapter.probe({ url }, signal())).toEqual({
      status: "no",
      reason: "llama.cpp answers but wants an API key: set apiKey for this service",
    });
    expect(await adapter.probe({ url, apiKey: "wrong" }, signal())).toEqual({
      status: "no",
      reason: "llama.cpp refuses the configured apiKey (401): check apiKey for this service",
    });
    const info = await adapter.describe({ url, apiKey: "sk-harness-test" }, signal());
    expect(info.models[0]).toMatchObject({
      contextLength: 256,
      features: ["streaming", "tool-use"],
    });
  });

  it("reports loading while /health answers 503, though /v1/models already answers", async () => {
    const upstream = await llama({ loading: true });
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "loading",
      reason: "llama.cpp is loading its model (GET /health: 503)",
    });
  });

  it("says what it saw when the server is another engine", async () => {
    const upstream = await start(new FakeOpenAIServer({ ownedBy: "vllm" }));
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "no",
      reason: 'GET /v1/models: owned_by is "vllm", not llamacpp',
    });
  });

  it("lists router-mode models, with context for the loaded ones, skipping failed ones", async () => {
    const upstream = await llama({
      router: [
        { id: "ggml-org/qwen3-0.6b-GGUF:Q8_0", status: "loaded", nCtx: 2048 },
        { id: "gemma-3-1b", status: "unloaded" },
        { id: "broken", status: "unloaded", failed: true },
      ],
    });
    expect((await adapter.probe(upstream, signal())).status).toBe("ready");
    const info = await adapter.describe(upstream, signal());
    expect(info.label).toBe("llama.cpp b1-80fb11a (router)");
    expect(info.maxConcurrent).toBeNull();
    expect(info.models.map((m) => [m.id, m.contextLength])).toEqual([
      ["ggml-org/qwen3-0.6b-GGUF:Q8_0", 2048],
      ["gemma-3-1b", null],
    ]);
  });

  it("streams usage and SSE comment pings through untouched", async () => {
    const fake = new FakeLlamaServer({ pingEveryMs: 1, tokens: [" a", " b"] });
    const upstream = await start(fake);
    const model = (await adapter.describe(upstream, signal())).models[0]!;
    fake.pauseGenerations();
    const reply = await adapter.execute(
      chatCall(upstream, model, {
        messages: [],
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    const head = await readUntil(reply.body, ": ping\n\n");
    fake.resumeGenerations();
    const events = (head + (await readAll(reply.body)))
      .split("\n\n")
      .filter((e) => e.startsWith("data: {"))
      .map(
        (e) => JSON.parse(e.slice(6)) as { choices: unknown[]; usage?: unknown; timings?: unknown },
      );
    const last = events.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: 2 });
    expect(last.timings).toBeDefined();
    expect(events.at(-2)?.choices[0]).toEqual({ finish_reason: "stop", index: 0, delta: {} });
  });
});
