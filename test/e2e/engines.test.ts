/**
 * Every LLM engine end to end: the official openai client → relay → tunnel → daemon → each
 * engine's fake, for the endpoints the club serves from them: model listing, chat completions
 * (plain, streamed, with tools, with an image) and text completions.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FakeServer, RecordedRequest } from "../fakes/fake-server.ts";
import { FakeKoboldCpp } from "../fakes/koboldcpp.ts";
import { FakeLmStudio } from "../fakes/lmstudio.ts";
import { FakeLocalAi } from "../fakes/localai.ts";
import { FakeOllama } from "../fakes/ollama.ts";
import { FakeSglang } from "../fakes/sglang.ts";
import { FakeTabbyApi } from "../fakes/tabbyapi.ts";
import { FakeTextgen } from "../fakes/textgen-webui.ts";
import { FakeVllm } from "../fakes/vllm.ts";
import { startStack, type Stack } from "./stack.ts";

const TOKENS = ["Hello", " from", " the", " rig"];
const IMAGE =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
const TOOL = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } } },
  },
};

/** Engine, its fake, the id the club lists, the id the engine serves, and the card's facts. */
const ENGINES: [string, FakeServer, string, string, Record<string, unknown>][] = [
  [
    "Ollama",
    new FakeOllama({ tokens: TOKENS }),
    "qwen3:8b",
    "qwen3:8b",
    { supported_features: ["streaming", "tool-use"], context_length: 8192 },
  ],
  [
    "vLLM",
    new FakeVllm({ tokens: TOKENS }),
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct",
    { context_length: 8192 },
  ],
  [
    "SGLang",
    new FakeSglang({ tokens: TOKENS, vision: true }),
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    { input_modalities: ["text", "image"], supported_features: ["streaming", "vision"] },
  ],
  [
    "LM Studio",
    new FakeLmStudio({ tokens: TOKENS }),
    "google/gemma-3-12b",
    "google/gemma-3-12b",
    { supported_features: ["streaming", "tool-use", "vision"], context_length: 8192 },
  ],
  [
    "KoboldCpp",
    new FakeKoboldCpp({ tokens: TOKENS }),
    "Mistral-Nemo-Instruct-2407-Q4_K_M",
    "koboldcpp/Mistral-Nemo-Instruct-2407-Q4_K_M",
    { context_length: 8192 },
  ],
  [
    "TabbyAPI",
    new FakeTabbyApi({ tokens: TOKENS }),
    "Qwen2.5-14B-Instruct-exl2",
    "Qwen2.5-14B-Instruct-exl2",
    { context_length: 16384 },
  ],
  [
    "text-generation-webui",
    new FakeTextgen({ tokens: TOKENS }),
    "Qwen_Qwen3-8B-Q4_K_M",
    "Qwen_Qwen3-8B-Q4_K_M.gguf",
    { context_length: null },
  ],
  [
    "LocalAI",
    new FakeLocalAi({ tokens: TOKENS }),
    "gemma-3-4b-it",
    "gemma-3-4b-it",
    { input_modalities: ["text", "image"] },
  ],
];

let stack: Stack;

beforeAll(async () => {
  const urls = await Promise.all(ENGINES.map(([, fake]) => fake.start()));
  stack = await startStack(urls);
});

afterAll(async () => {
  await stack.stop();
  await Promise.all(ENGINES.map(([, fake]) => fake.stop()));
});

/** The last request the engine got on `path` (re-scans may have probed it since). */
function lastOn(
  fake: FakeServer,
  path: string,
): RecordedRequest & { body: Record<string, unknown> } {
  const seen = fake.requests.filter((r) => r.path === path).at(-1);
  if (!seen) throw new Error(`the engine got no request on ${path}`);
  return seen as RecordedRequest & { body: Record<string, unknown> };
}

describe("engines: openai client → relay → daemon → each LLM engine", () => {
  it("lists every engine's models as llm cards with the engines' own capabilities", async () => {
    const cards = (await stack.client.models.list()).data;
    for (const [, , id, , facts] of ENGINES)
      expect(cards.find((c) => c.id === id)).toMatchObject({
        service_type: "llm",
        owned_by: "rig1",
        ...facts,
      });
    // Models that cannot chat (embeddings, speech) are not advertised as language models.
    const llm = cards.filter((c) => (c as { service_type?: string }).service_type === "llm");
    const ids = llm.map((c) => c.id);
    for (const absent of [
      "nomic-embed-text:latest",
      "text-embedding-nomic-embed-text-v1.5",
      "whisper-1",
      "tts-1",
    ])
      expect(ids).not.toContain(absent);
    // Ollama says which of its models embed; that one is an embedding card.
    expect(cards.find((c) => c.id === "nomic-embed-text:latest")).toMatchObject({
      service_type: "embedding",
    });
  });

  describe.each(ENGINES)("%s", (_engine, fake, id, servedId) => {
    it("answers a chat completion with the engine's served model id", async () => {
      const reply = await stack.client.chat.completions.create({
        model: id,
        messages: [{ role: "user", content: "hi" }],
      });
      expect(reply.choices[0]?.message.content).toBe("Hello from the rig");
      expect(lastOn(fake, "/v1/chat/completions").body.model).toBe(servedId);
    });

    it("streams a chat completion", async () => {
      const stream = await stack.client.chat.completions.create({
        model: id,
        messages: [{ role: "user", content: "hi" }],
        stream: true,
      });
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
      expect(text).toBe("Hello from the rig");
      expect(lastOn(fake, "/v1/chat/completions").body.stream).toBe(true);
    });

    it("passes tools through and returns the engine's tool call", async () => {
      const reply = await stack.client.chat.completions.create({
        model: id,
        messages: [{ role: "user", content: "Weather in Lyon?" }],
        tools: [TOOL],
        tool_choice: { type: "function", function: { name: "get_weather" } },
      });
      const call = reply.choices[0]?.message.tool_calls?.[0];
      expect(call?.type === "function" ? call.function.name : undefined).toBe("get_weather");
      expect(reply.choices[0]?.finish_reason).toBe("tool_calls");
      expect(lastOn(fake, "/v1/chat/completions").body.tools).toEqual([TOOL]);
    });

    it("passes an image_url data URI part through", async () => {
      const content = [
        { type: "text" as const, text: "What is in this picture?" },
        { type: "image_url" as const, image_url: { url: IMAGE } },
      ];
      const reply = await stack.client.chat.completions.create({
        model: id,
        messages: [{ role: "user", content }],
      });
      expect(reply.choices[0]?.message.content).toBe("Hello from the rig");
      expect(lastOn(fake, "/v1/chat/completions").body.messages).toEqual([
        { role: "user", content },
      ]);
    });

    it("answers a text completion", async () => {
      const reply = await stack.client.completions.create({
        model: id,
        prompt: "Once upon",
        max_tokens: 2,
      });
      expect(reply.choices[0]?.text).toBe("Hello from");
      expect(reply.choices[0]?.finish_reason).toBe("length");
      expect(lastOn(fake, "/v1/completions").body.model).toBe(servedId);
    });
  });
});
