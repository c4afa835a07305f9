import { describe, expect, it } from "vitest";
import lmstudio from "../../adapters/lmstudio.ts";
import { probeUrl } from "../../src/discovery/probe.ts";
import { FakeLmStudio } from "../fakes/lmstudio.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

describeAdapterConformance("lmstudio", {
  adapter: lmstudio,
  fake: (options) => new FakeLmStudio(options),
  // LM Studio loads models just in time, per request; its server has no loading state.
  loading: false,
});

describe("lmstudio adapter", () => {
  const adapter = lmstudio();
  const start = fakeUpstreams();

  it("reads the v1 API: tool use, vision, loaded context and parallel slots", async () => {
    const info = await adapter.describe(await start(new FakeLmStudio()), signal());
    expect(info).toMatchObject({ engine: "lmstudio", label: "LM Studio", maxConcurrent: 4 });
    expect(info.models).toEqual([
      {
        id: "google/gemma-3-12b",
        servedId: "google/gemma-3-12b",
        type: "llm",
        inputModalities: ["text", "image"],
        outputModalities: ["text"],
        features: ["streaming", "tool-use", "vision"],
        contextLength: 8192,
        quantization: "Q4_K_M",
      },
      expect.objectContaining({
        id: "qwen/qwen3-4b",
        features: ["streaming", "tool-use"],
        contextLength: 32768,
      }),
    ]);
  });

  it("falls back to the v0 API: vision from type vlm, no tool use reported", async () => {
    const upstream = await start(new FakeLmStudio({ api: "v0" }));
    expect((await adapter.probe(upstream, signal())).reason).toBe(
      'GET /v1/models: owned_by "organization_owner"; GET /api/v0/models answers',
    );
    const info = await adapter.describe(upstream, signal());
    expect(info.maxConcurrent).toBeNull();
    expect(info.models.map((m) => [m.id, m.features, m.contextLength])).toEqual([
      ["google/gemma-3-12b", ["streaming", "vision"], 131072],
      ["qwen/qwen3-4b", ["streaming"], 32768],
    ]);
  });

  it("leaves an LM Studio without a native API to the generic adapter", async () => {
    const upstream = await start(new FakeLmStudio({ api: "none" }));
    const outcome = await probeUrl(upstream);
    expect(outcome.tried.find((t) => t.adapter.name === "lmstudio")?.result).toEqual({
      status: "no",
      reason:
        'owned_by "organization_owner", but neither /api/v1/models nor /api/v0/models answers',
    });
    expect(outcome.adapter?.name).toBe("openai");
    expect((await outcome.adapter!.describe(upstream, signal())).engine).toBe("lmstudio");
  });
});
