import { createServer } from "node:http";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Upstream } from "../../adapters/adapter.ts";
import openaiCompatible from "../../adapters/openai-compatible.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { FakeOpenAIServer, type FakeOpenAIOptions } from "../fakes/openai-server.ts";
import { describeAdapterConformance } from "./conformance.ts";

describeAdapterConformance("openai", {
  adapter: openaiCompatible,
  fake: (options) => new FakeOpenAIServer(options),
});

describe("openai-compatible adapter", () => {
  const adapter = openaiCompatible();
  const running: FakeServer[] = [];
  const signal = (): AbortSignal => AbortSignal.timeout(5_000);

  async function start(fake: FakeServer): Promise<Upstream> {
    running.push(fake);
    return { url: await fake.start() };
  }
  const server = (options: FakeOpenAIOptions = {}): Promise<Upstream> =>
    start(new FakeOpenAIServer(options));

  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());

  it("describes a vLLM server with max_model_len", async () => {
    const info = await adapter.describe(await server({ contextLength: 8192 }), signal());
    expect(info).toEqual({
      engine: "vllm",
      label: "vLLM (OpenAI-compatible)",
      maxConcurrent: null,
      models: [
        {
          id: "Qwen/Qwen2.5-0.5B-Instruct",
          servedId: "Qwen/Qwen2.5-0.5B-Instruct",
          type: "llm",
          inputModalities: ["text"],
          outputModalities: ["text"],
          features: ["streaming"],
          contextLength: 8192,
        },
      ],
    });
  });

  it.each([
    ["sglang", "sglang"],
    ["organization_owner", "lmstudio"],
    ["tabbyAPI", "other"],
  ] as const)("maps owned_by %s to engine %s", async (ownedBy, engine) => {
    const info = await adapter.describe(await server({ ownedBy }), signal());
    expect(info.engine).toBe(engine);
    expect(info.models[0]!.contextLength).toBeNull();
  });

  it("reads context_length, and llama.cpp's meta.n_ctx when used as a generic server", async () => {
    const lmstudio = await server({ contextField: "context_length", contextLength: 32768 });
    expect((await adapter.describe(lmstudio, signal())).models[0]!.contextLength).toBe(32768);
    const llama = await start(new FakeLlamaServer());
    expect((await adapter.probe(llama, signal())).status).toBe("ready");
    expect((await adapter.describe(llama, signal())).models[0]).toMatchObject({
      id: "tiny-qwen2-chat",
      contextLength: 256,
    });
  });

  it("words a 401 as a missing key", async () => {
    const upstream = await server({ apiKey: "sk-x" });
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "no",
      reason: "answers 401: set apiKey for this service",
    });
  });

  it("does not take a 200 that is not a model list", async () => {
    const plain = createServer((_req, res) => res.end(JSON.stringify({ hello: "world" })));
    await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", resolve));
    const { port } = plain.address() as { port: number };
    try {
      expect(await adapter.probe({ url: `http://127.0.0.1:${port}` }, signal())).toEqual({
        status: "no",
        reason: "GET /v1/models: not an OpenAI model list",
      });
    } finally {
      plain.closeAllConnections();
      await new Promise((resolve) => plain.close(resolve));
    }
  });
});
