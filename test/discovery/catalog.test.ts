import { afterAll, afterEach, describe, expect, it } from "vitest";
import { adapters } from "../../adapters/index.ts";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { discover, type Service } from "../../src/discovery/catalog.ts";
import type { FakeServer } from "../fakes/fake-server.ts";
import { FakeLlamaServer, type FakeLlamaOptions } from "../fakes/llama-server.ts";
import { FakeOpenAIServer } from "../fakes/openai-server.ts";
import { FakeSpeaches, SPEACHES_PIPER, SPEACHES_STT, SPEACHES_TTS } from "../fakes/speaches.ts";
import { freePort } from "../fakes/util.ts";

const port = (url: string): number => Number(new URL(url).port);
const summary = (s: Service): [string, string, string] => [s.name, s.adapter.name, s.status];

describe("discover", () => {
  const running: FakeServer[] = [];
  async function start(fake: FakeServer): Promise<string> {
    running.push(fake);
    return fake.start();
  }
  const llama = (options: FakeLlamaOptions = {}): Promise<string> =>
    start(new FakeLlamaServer(options));
  const vllm = (): Promise<string> => start(new FakeOpenAIServer({ contextLength: 8192 }));

  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());

  it("keeps configured services that are down or loading, with reasons, and advertises only ready ones", async () => {
    const [a, b, loading] = await Promise.all([llama(), vllm(), llama({ loading: true })]);
    const dead = `http://127.0.0.1:${await freePort()}`;
    const catalog = await discover({
      services: [{ url: a }, { url: `${b}/` }, { url: loading, name: "big" }, { url: dead }],
      autodetect: false,
    });
    expect(catalog.services.map(summary)).toEqual([
      [`llamacpp-${port(a)}`, "llamacpp", "ready"],
      [`openai-${port(b)}`, "openai", "ready"],
      ["big", "llamacpp", "loading"],
      [`openai-${port(dead)}`, "openai", "down"],
    ]);
    expect(catalog.services[1]!.upstream.url).toBe(b);
    expect(catalog.services[2]!.reason).toBe("llama.cpp is loading its model (GET /health: 503)");
    expect(catalog.services[3]!.reason).toBe(`nothing listening at ${dead} (ECONNREFUSED)`);
    expect(catalog.cards("rig-1", 1700000000)).toEqual([
      {
        id: "tiny-qwen2-chat",
        access: "private",
        object: "model",
        created: 1700000000,
        owned_by: "rig-1",
        service_type: "llm",
        input_modalities: ["text"],
        output_modalities: ["text"],
        supported_features: ["streaming", "tool-use"],
        context_length: 256,
      },
      expect.objectContaining({ id: "Qwen/Qwen2.5-0.5B-Instruct", context_length: 8192 }),
    ]);
  });

  it("builds a manifest without URLs or keys", async () => {
    const url = await llama({ apiKey: "sk-secret", totalSlots: 3 });
    const catalog = await discover({
      services: [{ url, apiKey: "sk-secret", name: "gpu0" }],
      autodetect: false,
    });
    const manifest = catalog.manifest("rig-1", "host-a", "box");
    expect(manifest).toEqual({
      schema_version: 1,
      agent: { name: "rig-1" },
      hosts: [
        {
          id: "host-a",
          hostname: "box",
          gpus: [],
          services: [
            {
              name: "gpu0",
              engine: "llamacpp",
              type: "llm",
              features: ["streaming", "tool-use"],
              max_concurrent: 3,
              models: [
                {
                  id: "tiny-qwen2-chat",
                  input_modalities: ["text"],
                  output_modalities: ["text"],
                  features: ["streaming", "tool-use"],
                  context_length: 256,
                  quantization: "F16",
                },
              ],
            },
          ],
        },
      ],
    });
    expect(JSON.stringify(manifest)).not.toMatch(/sk-secret|127\.0\.0\.1/);
  });

  it("sets each service's and model's access from the sharing settings, a model's own first", async () => {
    const [a, b] = await Promise.all([llama({ alias: "chat-a" }), llama({ alias: "chat-b" })]);
    const catalog = await discover({
      services: [
        { url: a, name: "gpu0" },
        { url: b, name: "gpu1" },
      ],
      autodetect: false,
    });
    const sharing = { gpu0: "club", "chat-a": ["bob"], gpu1: "private" } as const;
    const services = catalog.manifest("rig", "h", undefined, [], {
      ...sharing,
      "chat-a": ["bob"],
    }).hosts[0]?.services;
    expect(services?.map((s) => [s.name, s.access, s.models.map((m) => m.access)])).toEqual([
      ["gpu0", "club", [["bob"]]],
      ["gpu1", "private", [undefined]],
    ]);
    expect(catalog.cards("rig", 0, { gpu0: "club" }).map((c) => [c.id, c.access])).toEqual([
      ["chat-a", "club"],
      ["chat-b", "private"],
    ]);
  });

  it("applies aliases (served or derived id) and reports the ones that match nothing", async () => {
    const url = await llama();
    const catalog = await discover({
      services: [
        {
          url,
          aliases: {
            "qwen-tiny": "/models/tiny-qwen2-chat.gguf",
            qt: "tiny-qwen2-chat",
            nope: "x",
          },
        },
      ],
      autodetect: false,
    });
    expect(catalog.cards("rig", 0).map((c) => c.id)).toEqual(["qwen-tiny", "qt"]);
    expect(catalog.find("qwen-tiny")?.model.servedId).toBe("/models/tiny-qwen2-chat.gguf");
    expect(catalog.find("tiny-qwen2-chat")).toBeUndefined();
    expect(catalog.services[0]!.reason).toMatch(/alias "nope" matches no model it serves$/);
  });

  it("takes maxConcurrent from config, else the engine, else 1", async () => {
    const [a, b, c] = await Promise.all([
      llama({ totalSlots: 4 }),
      llama({ totalSlots: 4 }),
      vllm(),
    ]);
    const catalog = await discover({
      services: [{ url: a, maxConcurrent: 9 }, { url: b }, { url: c }],
      autodetect: false,
    });
    expect(catalog.services.map((s) => s.maxConcurrent)).toEqual([9, 4, 1]);
  });

  it("honours a configured engine, and reports an unknown one without throwing", async () => {
    const url = await llama();
    const catalog = await discover({
      services: [
        { url, engine: "openai" },
        { url, engine: "tgi", name: "odd" },
        { url: "not a url", name: "typo" },
      ],
      autodetect: false,
    });
    expect(catalog.services.map(summary)).toEqual([
      [`openai-${port(url)}`, "openai", "ready"],
      ["odd", "openai", "down"],
      ["typo", "openai", "down"],
    ]);
    const names = adapters.map((a) => a.name).join(", ");
    expect(catalog.services[1]!.reason).toBe(`unknown engine "tgi": use one of ${names}`);
    expect(catalog.services[2]!.reason).toBe("invalid upstream URL not a url");
  });

  it("auto-detects engines on the given ports and leaves out ports where none answers", async () => {
    const [a, b] = await Promise.all([llama(), vllm()]);
    const dead = await freePort();
    const catalog = await discover({
      services: [],
      autodetect: true,
      ports: [port(a), port(b), dead],
    });
    expect(catalog.services.map(summary)).toEqual([
      [`llamacpp-${port(a)}`, "llamacpp", "ready"],
      [`openai-${port(b)}`, "openai", "ready"],
    ]);
  });

  it("does not probe a configured URL twice when auto-detection covers its port", async () => {
    const fake = new FakeLlamaServer();
    const url = await start(fake);
    const catalog = await discover({
      services: [{ url: `${url.replace("127.0.0.1", "localhost")}/`, name: "mine" }],
      autodetect: true,
      ports: [port(url)],
      host: "127.0.0.1",
    });
    expect(catalog.services.map((s) => s.name)).toEqual(["mine"]);
    expect(fake.requests.filter((r) => r.path === "/health")).toHaveLength(1);
  });

  it("is cheap to run again and follows the engine's state", async () => {
    const fake = new FakeLlamaServer({ loading: true });
    const url = await start(fake);
    const options = { services: [{ url }], autodetect: false };
    expect((await discover(options)).services[0]!.status).toBe("loading");
    fake.setLoading(false);
    expect((await discover(options)).services[0]!.status).toBe("ready");
    fake.kill();
    const after = await discover(options);
    expect(after.services[0]!.status).toBe("down");
    expect(after.cards("rig", 0)).toEqual([]);
  });

  it("lists a service with stt and tts models once per type, so each card has its type", async () => {
    const url = await start(new FakeSpeaches());
    const catalog = await discover({ services: [{ url, name: "voice" }], autodetect: false });
    const services = catalog.manifest("rig", "host").hosts[0]!.services;
    expect(services.map((s) => [s.name, s.type, s.features, s.models.map((m) => m.id)])).toEqual([
      ["voice", "stt", ["timestamps"], [SPEACHES_STT]],
      ["voice-tts", "tts", [], [SPEACHES_TTS, SPEACHES_PIPER]],
    ]);
    const types = catalog.cards("rig", 0).map((c) => [c.id, c.service_type]);
    expect(types).toEqual([
      [SPEACHES_STT, "stt"],
      [SPEACHES_TTS, "tts"],
      [SPEACHES_PIPER, "tts"],
    ]);
  });
});
