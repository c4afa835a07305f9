/**
 * Every LLM engine's fake, probed with every adapter in priority order: exactly the right one
 * must win, traps included (engines.md §10): llama.cpp answers Ollama's `/api/tags` and
 * `/api/show`, KoboldCpp answers `/api/tags` too, TabbyAPI answers llama.cpp's `/props` and
 * KoboldCpp's `/api/extra/version`.
 */
import type { ServerResponse } from "node:http";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { closeUpstreamPools } from "../../adapters/kit/openai-style.ts";
import { probeUrl } from "../../src/discovery/probe.ts";
import type { Body, FakeServer, RecordedRequest } from "../fakes/fake-server.ts";
import { FakeKoboldCpp } from "../fakes/koboldcpp.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { FakeLmStudio } from "../fakes/lmstudio.ts";
import { FakeLocalAi } from "../fakes/localai.ts";
import { FakeOllama } from "../fakes/ollama.ts";
import { FakeOpenAIServer } from "../fakes/openai-server.ts";
import { FakeSglang } from "../fakes/sglang.ts";
import { FakeTabbyApi } from "../fakes/tabbyapi.ts";
import { FakeTextgen } from "../fakes/textgen-webui.ts";
import { FakeVllm } from "../fakes/vllm.ts";

/** A newer llama-server: `/api/tags` runs the `/v1/models` handler and `/api/show` answers. */
class LlamaWithOllamaRoutes extends FakeLlamaServer {
  protected override async handle(
    req: RecordedRequest,
    body: Body,
    res: ServerResponse,
  ): Promise<void> {
    if (req.method === "GET" && req.path === "/api/tags")
      return super.handle({ ...req, path: "/v1/models" }, body, res);
    if (req.method === "POST" && req.path === "/api/show") {
      res.setHeader("Server", "llama.cpp");
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ template: "", capabilities: ["completion"], model_info: {} }));
      return;
    }
    return super.handle(req, body, res);
  }
}

const CASES: [string, () => FakeServer, string, "ready" | "loading"][] = [
  ["llama-server (recorded build)", () => new FakeLlamaServer(), "llamacpp", "ready"],
  [
    "llama-server answering /api/tags and /api/show",
    () => new LlamaWithOllamaRoutes(),
    "llamacpp",
    "ready",
  ],
  ["llama-server loading", () => new FakeLlamaServer({ loading: true }), "llamacpp", "loading"],
  ["Ollama", () => new FakeOllama(), "ollama", "ready"],
  ["vLLM", () => new FakeVllm(), "vllm", "ready"],
  ["SGLang", () => new FakeSglang(), "sglang", "ready"],
  ["SGLang starting", () => new FakeSglang({ loading: true }), "sglang", "loading"],
  ["LM Studio 0.4", () => new FakeLmStudio(), "lmstudio", "ready"],
  ["LM Studio 0.3", () => new FakeLmStudio({ api: "v0" }), "lmstudio", "ready"],
  ["KoboldCpp (answers /api/tags)", () => new FakeKoboldCpp(), "koboldcpp", "ready"],
  [
    "TabbyAPI (answers /props and /api/extra/version)",
    () => new FakeTabbyApi(),
    "tabbyapi",
    "ready",
  ],
  ["TabbyAPI without a model", () => new FakeTabbyApi({ loading: true }), "tabbyapi", "loading"],
  ["text-generation-webui", () => new FakeTextgen(), "textgen", "ready"],
  [
    "text-generation-webui without a model",
    () => new FakeTextgen({ loading: true }),
    "textgen",
    "loading",
  ],
  ["LocalAI", () => new FakeLocalAi(), "localai", "ready"],
  [
    "LocalAI before its discovery document",
    () => new FakeLocalAi({ legacy: true }),
    "localai",
    "ready",
  ],
  ["LocalAI starting", () => new FakeLocalAi({ loading: true }), "localai", "loading"],
  [
    "an unknown OpenAI-compatible server",
    () => new FakeOpenAIServer({ ownedBy: "acme" }),
    "openai",
    "ready",
  ],
];

describe("fingerprints: every adapter probes every LLM engine's fake", () => {
  const running: FakeServer[] = [];
  afterEach(async () => {
    await Promise.all(running.splice(0).map((f) => f.stop()));
  });
  afterAll(() => closeUpstreamPools());

  it.each(CASES)("%s → %s", async (_name, make, engine, status) => {
    const fake = make();
    running.push(fake);
    const outcome = await probeUrl({ url: await fake.start() });
    expect(outcome.adapter?.name).toBe(engine);
    expect(outcome.result.status).toBe(status);
    // Every adapter before the winner said no; none after it was asked.
    const names = outcome.tried.map((t) => t.adapter.name);
    expect(names.at(-1)).toBe(engine);
    expect(outcome.tried.slice(0, -1).every((t) => t.result.status === "no")).toBe(true);
  });

  it("reads Ollama's banner, not its routes: the llama.cpp with /api/tags is no Ollama", async () => {
    const fake = new LlamaWithOllamaRoutes();
    running.push(fake);
    const outcome = await probeUrl({ url: await fake.start() }, { engine: "ollama" });
    expect(outcome.result).toEqual({
      status: "no",
      reason: 'GET / answers 404, not the text "Ollama is running"',
    });
  });
});
