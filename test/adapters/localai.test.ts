import { describe, expect, it } from "vitest";
import localai from "../../adapters/localai.ts";
import { FakeLocalAi } from "../fakes/localai.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

describeAdapterConformance("localai", {
  adapter: localai,
  fake: (options) => new FakeLocalAi(options),
});

describe("localai adapter", () => {
  const adapter = localai();
  const start = fakeUpstreams();

  it("lists only the models that chat, with tools, vision and context_size", async () => {
    const upstream = await start(new FakeLocalAi());
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "ready",
      reason: "GET /.well-known/localai.json: LocalAI v3.5.0",
    });
    const info = await adapter.describe(upstream, signal());
    expect(info).toMatchObject({ engine: "other", label: "LocalAI v3.5.0", maxConcurrent: null });
    expect(info.models.map((m) => [m.id, m.features, m.inputModalities, m.contextLength])).toEqual([
      ["qwen3-8b", ["streaming", "tool-use"], ["text"], 8192],
      ["gemma-3-4b-it", ["streaming", "vision"], ["text", "image"], null],
    ]);
  });

  it("knows an older build by /readyz and /version, and lists all its models", async () => {
    const upstream = await start(new FakeLocalAi({ legacy: true }));
    expect((await adapter.probe(upstream, signal())).status).toBe("ready");
    const info = await adapter.describe(upstream, signal());
    expect(info.label).toBe("LocalAI v2.20.1");
    // Without /v1/models/capabilities nothing says which models chat.
    expect(info.models.map((m) => m.id)).toEqual([
      "qwen3-8b",
      "gemma-3-4b-it",
      "whisper-1",
      "tts-1",
    ]);
  });

  it("names LocalAI when it wants a key", async () => {
    const { url } = await start(new FakeLocalAi({ apiKey: "sk-local" }));
    expect((await adapter.probe({ url }, signal())).reason).toBe(
      "LocalAI v3.5.0 answers 401: set apiKey for this service",
    );
  });
});
