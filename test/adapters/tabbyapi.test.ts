import { describe, expect, it } from "vitest";
import llamacpp from "../../adapters/llamacpp.ts";
import tabbyapi from "../../adapters/tabbyapi.ts";
import { FakeTabbyApi } from "../fakes/tabbyapi.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

describeAdapterConformance("tabbyapi", {
  adapter: tabbyapi,
  fake: (options) => new FakeTabbyApi(options),
});

describe("tabbyapi adapter", () => {
  const adapter = tabbyapi();
  const start = fakeUpstreams();

  it("describes the loaded model: max_seq_len, use_vision, max_batch_size as concurrency", async () => {
    const upstream = await start(
      new FakeTabbyApi({ maxSeqLen: 32768, maxBatchSize: 4, vision: true }),
    );
    expect(await adapter.describe(upstream, signal())).toEqual({
      engine: "other",
      label: "TabbyAPI",
      maxConcurrent: 4,
      models: [
        {
          id: "Qwen2.5-14B-Instruct-exl2",
          servedId: "Qwen2.5-14B-Instruct-exl2",
          type: "llm",
          inputModalities: ["text", "image"],
          outputModalities: ["text"],
          features: ["streaming", "vision"],
          contextLength: 32768,
        },
      ],
    });
  });

  it("names TabbyAPI when it wants a key, and is loading without a model", async () => {
    const { url } = await start(new FakeTabbyApi({ apiKey: "tabby-key" }));
    expect((await adapter.probe({ url }, signal())).reason).toBe(
      "TabbyAPI answers 401: set apiKey for this service",
    );
    const idle = await start(new FakeTabbyApi({ loading: true }));
    expect(await adapter.probe(idle, signal())).toEqual({
      status: "loading",
      reason: "TabbyAPI has no model loaded yet (GET /v1/model: 503)",
    });
  });

  it("is not taken for llama.cpp, though it serves a llama.cpp-like /props", async () => {
    const upstream = await start(new FakeTabbyApi());
    expect((await llamacpp().probe(upstream, signal())).status).toBe("no");
  });
});
