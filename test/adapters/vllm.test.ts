import { describe, expect, it } from "vitest";
import llamacpp from "../../adapters/llamacpp.ts";
import vllm from "../../adapters/vllm.ts";
import { probeUrl } from "../../src/discovery/probe.ts";
import { FakeVllm } from "../fakes/vllm.ts";
import { silentServer } from "../fakes/util.ts";
import { describeAdapterConformance } from "./conformance.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

describeAdapterConformance("vllm", {
  adapter: vllm,
  fake: (options) => new FakeVllm(options),
  // vLLM answers nothing while it loads: the probe times out (tested below, through probeUrl).
  loading: false,
});

describe("vllm adapter", () => {
  const adapter = vllm();
  const start = fakeUpstreams();

  it("describes models with max_model_len; a LoRA adapter runs on its parent's context", async () => {
    const upstream = await start(new FakeVllm({ maxModelLen: 32768, loras: ["sql-lora"] }));
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "ready",
      reason: 'GET /v1/models: owned_by "vllm"; GET /version: 0.11.0',
    });
    const info = await adapter.describe(upstream, signal());
    expect(info).toMatchObject({ engine: "vllm", label: "vLLM 0.11.0", maxConcurrent: null });
    expect(info.models).toEqual([
      {
        id: "Qwen/Qwen2.5-7B-Instruct",
        servedId: "Qwen/Qwen2.5-7B-Instruct",
        type: "llm",
        inputModalities: ["text"],
        outputModalities: ["text"],
        // Tool calling and vision depend on launch flags the API does not report.
        features: ["streaming"],
        contextLength: 32768,
      },
      expect.objectContaining({ id: "sql-lora", contextLength: 32768 }),
    ]);
  });

  it("names vLLM when its /v1 wants a key, from the public /version", async () => {
    const { url } = await start(new FakeVllm({ apiKey: "sk-v" }));
    expect(await adapter.probe({ url }, signal())).toEqual({
      status: "no",
      reason: "vLLM answers 401: set apiKey for this service",
    });
    expect((await adapter.probe({ url, apiKey: "wrong" }, signal())).reason).toBe(
      "vLLM answers 401 to the configured apiKey: check apiKey for this service",
    );
  });

  it("says the engine is dead when /health answers 503", async () => {
    const upstream = await start(new FakeVllm({ dead: true }));
    expect(await adapter.probe(upstream, signal())).toEqual({
      status: "no",
      reason: "vLLM 0.11.0: its engine is dead (GET /health: 503): restart vllm serve",
    });
  });

  it("reports a configured vLLM that accepts connections but stays silent as loading", async () => {
    const fake = new FakeVllm({ loading: true });
    const upstream = await start(fake);
    const outcome = await probeUrl(upstream, { engine: "vllm", timeoutMs: 300 });
    expect(outcome.adapter?.name).toBe("vllm");
    expect(outcome.result).toEqual({
      status: "loading",
      reason: `no answer within 0.3 s at ${upstream.url}: vLLM accepts connections but is silent while it loads`,
    });
    fake.setLoading(false);
    expect((await adapter.probe(upstream, signal())).status).toBe("ready");
  });

  it("reports a silent server on vLLM's default port as probably vLLM loading", async () => {
    const silent = await silentServer();
    try {
      const port = Number(new URL(silent.url).port);
      const onThatPort = { ...vllm(), defaultPorts: [port] };
      const outcome = await probeUrl(
        { url: silent.url },
        { adapters: [llamacpp(), onThatPort], timeoutMs: 200 },
      );
      expect(outcome.adapter).toBe(onThatPort);
      expect(outcome.result).toEqual({
        status: "loading",
        reason: `no answer within 0.2 s at ${silent.url}: probably vLLM loading its model (it is silent while it loads, and ${port} is its port)`,
      });
    } finally {
      await silent.close();
    }
  });
});
