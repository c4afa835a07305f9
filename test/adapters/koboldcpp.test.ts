import { describe, expect, it } from "vitest";
import koboldcpp from "../../adapters/koboldcpp.ts";
import { FakeKoboldCpp } from "../fakes/koboldcpp.ts";
import { FakeTabbyApi } from "../fakes/tabbyapi.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

describeAdapterConformance("koboldcpp", {
  adapter: koboldcpp,
  fake: (options) => new FakeKoboldCpp(options),
  // KoboldCpp loads its model before it listens; there is no loading state over HTTP.
  loading: false,
});

describe("koboldcpp adapter", () => {
  const adapter = koboldcpp();
  const start = fakeUpstreams();

  it("describes the model without its koboldcpp/ prefix, vision and the true context", async () => {
    const upstream = await start(new FakeKoboldCpp({ vision: true, contextSize: 16384 }));
    expect((await adapter.probe(upstream, signal())).reason).toBe(
      'GET /v1/models: owned_by "koboldcpp"; GET /api/extra/version: KoboldCpp 1.98.1',
    );
    expect(await adapter.describe(upstream, signal())).toEqual({
      engine: "other",
      label: "KoboldCpp 1.98.1",
      maxConcurrent: null,
      models: [
        {
          id: "Mistral-Nemo-Instruct-2407-Q4_K_M",
          servedId: "koboldcpp/Mistral-Nemo-Instruct-2407-Q4_K_M",
          type: "llm",
          inputModalities: ["text", "image"],
          outputModalities: ["text"],
          features: ["streaming", "vision"],
          contextLength: 16384,
        },
      ],
    });
  });

  it("tells a missing password from a wrong one", async () => {
    const { url } = await start(new FakeKoboldCpp({ apiKey: "hunter2" }));
    expect((await adapter.probe({ url }, signal())).reason).toBe(
      "KoboldCpp 1.98.1 has a --password: set apiKey for this service to it",
    );
    expect(await adapter.probe({ url, apiKey: "wrong" }, signal())).toEqual({
      status: "no",
      reason: "KoboldCpp 1.98.1 refuses the configured apiKey: check apiKey for this service",
    });
  });

  it("does not take TabbyAPI, which answers /api/extra/version as KoboldCpp", async () => {
    const upstream = await start(new FakeTabbyApi());
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "no",
      reason: 'GET /v1/models: owned_by is "tabbyAPI", not koboldcpp',
    });
  });
});
