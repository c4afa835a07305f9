import { describe, expect, it } from "vitest";
import sglang from "../../adapters/sglang.ts";
import { FakeSglang } from "../fakes/sglang.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

describeAdapterConformance("sglang", {
  adapter: sglang,
  fake: (options) => new FakeSglang(options),
});

describe("sglang adapter", () => {
  const adapter = sglang();
  const start = fakeUpstreams();

  it("takes vision and audio from /get_model_info and the context from max_model_len", async () => {
    const upstream = await start(
      new FakeSglang({ vision: true, audio: true, contextLength: 32768 }),
    );
    expect((await adapter.probe(upstream, signal())).reason).toBe(
      'GET /v1/models: owned_by "sglang"; GET /get_model_info: meta-llama/Llama-3.1-8B-Instruct',
    );
    expect(await adapter.describe(upstream, signal())).toEqual({
      engine: "sglang",
      label: "SGLang",
      maxConcurrent: null,
      models: [
        {
          id: "meta-llama/Llama-3.1-8B-Instruct",
          servedId: "meta-llama/Llama-3.1-8B-Instruct",
          type: "llm",
          inputModalities: ["text", "image", "audio"],
          outputModalities: ["text"],
          features: ["streaming", "vision"],
          contextLength: 32768,
        },
      ],
    });
  });

  it("is loading while /health answers 503, though /v1/models already answers", async () => {
    const upstream = await start(new FakeSglang({ loading: true }));
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "loading",
      reason: "SGLang is starting (GET /health: 503)",
    });
  });

  it("serves no language model when started with --is-embedding", async () => {
    const upstream = await start(new FakeSglang({ isGeneration: false }));
    expect((await adapter.describe(upstream, signal())).models).toEqual([]);
  });
});
