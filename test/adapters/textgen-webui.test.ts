import { describe, expect, it } from "vitest";
import textgenWebui from "../../adapters/textgen-webui.ts";
import { FakeTextgen } from "../fakes/textgen-webui.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

describeAdapterConformance("textgen", {
  adapter: textgenWebui,
  fake: (options) => new FakeTextgen(options),
});

describe("text-generation-webui adapter", () => {
  const adapter = textgenWebui();
  const start = fakeUpstreams();

  it("serves the loaded model only, not every model on disk", async () => {
    const upstream = await start(new FakeTextgen());
    expect((await adapter.probe(upstream, signal())).reason).toBe(
      "GET /v1/internal/model/info: text-generation-webui with Qwen_Qwen3-8B-Q4_K_M.gguf",
    );
    expect(await adapter.describe(upstream, signal())).toEqual({
      engine: "other",
      label: "text-generation-webui",
      maxConcurrent: null,
      models: [
        {
          id: "Qwen_Qwen3-8B-Q4_K_M",
          servedId: "Qwen_Qwen3-8B-Q4_K_M.gguf",
          type: "llm",
          inputModalities: ["text"],
          outputModalities: ["text"],
          features: ["streaming"],
          contextLength: null,
        },
      ],
    });
  });

  it("is loading while no model is loaded", async () => {
    const upstream = await start(new FakeTextgen({ loading: true }));
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "loading",
      reason: "text-generation-webui has no model loaded yet",
    });
  });
});
