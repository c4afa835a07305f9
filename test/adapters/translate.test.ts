/**
 * The Responses and Messages translators, on the chat shapes engines send (engines.md; the
 * streamed tool-call chunks as llama-server and vLLM emit them: the id and name first, the
 * arguments in pieces), and detection of embedding and rerank models from the engines' fakes.
 */
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import llamacpp from "../../adapters/llamacpp.ts";
import { chatStreamToMessages, messagesToChat } from "../../adapters/kit/translate/messages.ts";
import { chatStreamToResponses, responsesToChat } from "../../adapters/kit/translate/responses.ts";
import { sseData } from "../../adapters/kit/translate/sse.ts";
import vllm from "../../adapters/vllm.ts";
import { anthropicError } from "../../src/relay/anthropic.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { FakeVllm } from "../fakes/vllm.ts";
import { fakeUpstreams, signal } from "./fake-upstreams.ts";

/** A streamed tool call in the chunks an OpenAI-style engine sends. */
const TOOL_CHUNKS = [
  { choices: [{ delta: { role: "assistant", content: null } }] },
  {
    choices: [
      {
        delta: {
          tool_calls: [
            {
              index: 0,
              id: "call_a",
              type: "function",
              function: { name: "get_weather", arguments: "" },
            },
          ],
        },
      },
    ],
  },
  { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] } }] },
  { choices: [{ delta: { tool_calls: [{ index: 0, function: { arguments: '"Lyon"}' } }] } }] },
  { choices: [{ delta: {}, finish_reason: "tool_calls" }] },
  { choices: [], usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 } },
];

function from(items: unknown[]): AsyncIterable<unknown> {
  return (async function* () {
    await Promise.resolve();
    yield* items;
  })();
}

/** One parsed event; `data` read through casts where a test looks inside. */
interface Ev {
  type: string;
  data: unknown;
}

async function collect(events: AsyncGenerator<string>): Promise<Ev[]> {
  const out: Ev[] = [];
  for await (const text of events) {
    const m = /^event: (\S+)\ndata: (.*)\n\n$/s.exec(text);
    if (!m) throw new Error(`not one SSE event: ${text}`);
    out.push({ type: m[1]!, data: JSON.parse(m[2]!) });
  }
  return out;
}

describe("Responses → chat", () => {
  it("turns input items, tool calls and their outputs into chat messages", () => {
    const chat = responsesToChat({
      model: "m",
      instructions: "sys",
      input: [
        { role: "developer", content: "dev note" },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Weather?" }] },
        { type: "function_call", call_id: "c1", name: "get_weather", arguments: "{}" },
        { type: "function_call_output", call_id: "c1", output: "sunny" },
      ],
      tools: [{ type: "function", name: "get_weather", parameters: { type: "object" } }],
      tool_choice: "required",
      max_output_tokens: 9,
      stream: true,
    });
    expect(chat).toEqual({
      model: "m",
      messages: [
        { role: "system", content: "sys" },
        { role: "system", content: "dev note" },
        { role: "user", content: "Weather?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "c1", type: "function", function: { name: "get_weather", arguments: "{}" } },
          ],
        },
        { role: "tool", tool_call_id: "c1", content: "sunny" },
      ],
      tools: [
        { type: "function", function: { name: "get_weather", parameters: { type: "object" } } },
      ],
      tool_choice: "required",
      max_tokens: 9,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it("streams a tool call as a function_call item with argument deltas, and usage", async () => {
    const events = await collect(chatStreamToResponses(from(TOOL_CHUNKS), { model: "m" }));
    expect(events.map((e) => e.type)).toEqual([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.delta",
      "response.function_call_arguments.done",
      "response.output_item.done",
      "response.completed",
    ]);
    const seq = events.map((e) => (e.data as { sequence_number: number }).sequence_number);
    expect(seq).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(events[5]?.data).toMatchObject({ arguments: '{"city":"Lyon"}' });
    const done = (events.at(-1)?.data as { response: { output: unknown; usage: unknown } })
      .response;
    const added = events[2]?.data as { item: { id: string } };
    expect(done.output).toEqual([
      {
        type: "function_call",
        id: added.item.id,
        call_id: "call_a",
        name: "get_weather",
        arguments: '{"city":"Lyon"}',
        status: "completed",
      },
    ]);
    expect(done.usage).toMatchObject({ input_tokens: 12, output_tokens: 7, total_tokens: 19 });
  });

  it("a reply cut by max tokens ends response.incomplete", async () => {
    const chunks = [
      { choices: [{ delta: { content: "Hi" } }] },
      { choices: [{ delta: {}, finish_reason: "length" }] },
    ];
    const events = await collect(chatStreamToResponses(from(chunks), { model: "m" }));
    expect(events.at(-1)?.type).toBe("response.incomplete");
    expect(events.at(-1)?.data).toMatchObject({
      response: { incomplete_details: { reason: "max_output_tokens" } },
    });
  });
});

describe("Messages → chat", () => {
  it("turns system, images, tool_use and tool_result into chat messages", () => {
    const chat = messagesToChat({
      model: "m",
      max_tokens: 5,
      system: [{ type: "text", text: "sys" }],
      stop_sequences: ["END"],
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "AAAA" } },
          ],
        },
        {
          role: "assistant",
          content: [{ type: "tool_use", id: "t1", name: "look", input: { a: 1 } }],
        },
        { role: "user", content: [{ type: "tool_result", tool_use_id: "t1", content: "a cat" }] },
      ],
      tools: [{ name: "look", input_schema: { type: "object" } }],
      tool_choice: { type: "any" },
    });
    expect(chat).toEqual({
      model: "m",
      max_tokens: 5,
      stop: ["END"],
      messages: [
        { role: "system", content: "sys" },
        {
          role: "user",
          content: [
            { type: "text", text: "What is this?" },
            { type: "image_url", image_url: { url: "data:image/png;base64,AAAA" } },
          ],
        },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: "t1", type: "function", function: { name: "look", arguments: '{"a":1}' } },
          ],
        },
        { role: "tool", tool_call_id: "t1", content: "a cat" },
      ],
      tools: [{ type: "function", function: { name: "look", parameters: { type: "object" } } }],
      tool_choice: "required",
    });
  });

  it("streams a tool call as a tool_use block with input_json_delta, and usage", async () => {
    const events = await collect(chatStreamToMessages(from(TOOL_CHUNKS), { model: "m" }));
    expect(events.map((e) => e.type)).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    expect(events[1]?.data).toMatchObject({
      content_block: { type: "tool_use", id: "call_a", name: "get_weather", input: {} },
    });
    expect(
      events
        .slice(2, 4)
        .map((e) => (e.data as { delta: { partial_json: string } }).delta.partial_json)
        .join(""),
    ).toBe('{"city":"Lyon"}');
    expect(events[5]?.data).toMatchObject({
      delta: { stop_reason: "tool_use" },
      usage: { output_tokens: 7 },
    });
  });
});

describe("reading an engine's SSE stream", () => {
  it("joins a character split between two chunks", async () => {
    const bytes = Buffer.from(
      `data: {"choices":[{"delta":{"content":"Köln ☕"}}]}\n\ndata: [DONE]\n\n`,
    );
    const at = bytes.indexOf("☕") + 1; // inside the three bytes of ☕
    const split = bytes.indexOf("ö") + 1; // inside the two bytes of ö
    const chunks = [bytes.subarray(0, split), bytes.subarray(split, at), bytes.subarray(at)];
    const payloads: unknown[] = [];
    for await (const data of sseData(Readable.from(chunks))) payloads.push(data);
    expect(payloads).toEqual([{ choices: [{ delta: { content: "Köln ☕" } }] }]);
  });
});

describe("Anthropic error shape", () => {
  it("maps the club's and engines' errors, keeping the message", () => {
    expect(
      JSON.parse(anthropicError(404, '{"error":{"message":"gone","type":"no_provider"}}')),
    ).toEqual({
      type: "error",
      error: { type: "not_found_error", message: "gone" },
    });
    expect(JSON.parse(anthropicError(401, '{"error":"Unauthorized"}')).error).toEqual({
      type: "authentication_error",
      message: "Unauthorized",
    });
    expect(JSON.parse(anthropicError(502, "bad gateway")).error).toEqual({
      type: "api_error",
      message: "bad gateway",
    });
  });
});

describe("detection of embedding and rerank models", () => {
  const start = fakeUpstreams();

  it("llama-server: --reranking is rerank, --embeddings is embedding, neither is llm", async () => {
    const cases = [
      [{ reranking: true }, "rerank"],
      [{ embeddings: true }, "embedding"],
      [{}, "llm"],
    ] as const;
    for (const [flags, type] of cases) {
      const upstream = await start(new FakeLlamaServer({ alias: "same-name", ...flags }));
      const [model] = (await llamacpp().describe(upstream, signal())).models;
      expect(model?.type).toBe(type);
    }
  });

  it("vLLM: the routes its task mounts (openapi.json); without the list, llm", async () => {
    const cases = [
      [{ task: "embed" }, "embedding"],
      [{ task: "score" }, "rerank"],
      [{ task: "generate" }, "llm"],
      [{ task: "embed", noDocs: true }, "llm"],
    ] as const;
    for (const [options, type] of cases) {
      const upstream = await start(new FakeVllm({ model: "org/same-name", ...options }));
      const [model] = (await vllm().describe(upstream, signal())).models;
      expect(model?.type).toBe(type);
    }
  });
});
