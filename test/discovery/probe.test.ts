import { afterAll, afterEach, describe, expect, it } from "vitest";
import llamacpp from "../../adapters/llamacpp.ts";
import openaiCompatible from "../../adapters/openai-compatible.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { probeUrl } from "../../src/discovery/probe.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { FakeOpenAIServer } from "../fakes/openai-server.ts";
import { freePort, silentServer } from "../fakes/util.ts";

/** Two adapters, so the cases below test probeUrl itself, not the registry (see fingerprint.test.ts). */
const TWO = [llamacpp(), openaiCompatible()];

describe("probeUrl", () => {
  const running: FakeServer[] = [];
  async function start(fake: FakeServer): Promise<string> {
    running.push(fake);
    return fake.start();
  }
  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());

  it("stops at the first adapter that recognises the server", async () => {
    const outcome = await probeUrl({ url: await start(new FakeLlamaServer()) });
    expect(outcome.adapter?.name).toBe("llamacpp");
    expect(outcome.result.status).toBe("ready");
    // Dia and Hunyuan3D come first: they alone can tell their own busy silence (adapters/index.ts).
    expect(outcome.tried.map((t) => t.adapter.name)).toEqual(["dia", "hunyuan3d", "llamacpp"]);
  });

  it("falls through to the generic adapter and keeps what each one concluded", async () => {
    const url = await start(new FakeOpenAIServer({ ownedBy: "vllm" }));
    const outcome = await probeUrl({ url }, { adapters: TWO });
    expect(outcome.adapter?.name).toBe("openai");
    expect(outcome.tried.map((t) => [t.adapter.name, t.result.status])).toEqual([
      ["llamacpp", "no"],
      ["openai", "ready"],
    ]);
  });

  it("tries only the configured engine", async () => {
    const url = await start(new FakeLlamaServer());
    const outcome = await probeUrl({ url }, { engine: "openai" });
    expect(outcome.adapter?.name).toBe("openai");
    expect(outcome.tried).toHaveLength(1);
  });

  it("names an unknown engine and the known ones", async () => {
    const outcome = await probeUrl(
      { url: "http://127.0.0.1:1" },
      { engine: "ollama", adapters: TWO },
    );
    expect(outcome.result).toEqual({
      status: "no",
      reason: 'unknown engine "ollama": use one of llamacpp, openai',
    });
  });

  it("says nothing listens, without trying every adapter", async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const outcome = await probeUrl({ url });
    expect(outcome.result).toEqual({
      status: "no",
      reason: `nothing listening at ${url} (ECONNREFUSED)`,
    });
    expect(outcome.tried).toEqual([]);
  });

  it("says no answer came when a server accepts but stays silent", async () => {
    const silent = await silentServer();
    try {
      const outcome = await probeUrl({ url: silent.url }, { timeoutMs: 200 });
      expect(outcome.result).toEqual({
        status: "no",
        reason: `no answer within 0.2 s at ${silent.url}`,
      });
      expect(outcome.tried).toEqual([]);
    } finally {
      await silent.close();
    }
  });

  it("joins every adapter's reason when none takes the server", async () => {
    const url = await start(new FakeLlamaServer({ apiKey: "k" }));
    const outcome = await probeUrl({ url }, { adapters: TWO });
    expect(outcome.adapter).toBeUndefined();
    expect(outcome.result.reason).toBe(
      "llamacpp: llama.cpp answers but wants an API key: set apiKey for this service; " +
        "openai: answers 401: set apiKey for this service",
    );
  });
});
