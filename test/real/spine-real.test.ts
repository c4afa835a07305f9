/**
 * The spine against the real llama-server (built by test/real/llama-server.sh): what the fakes
 * claim, checked against the engine itself. Run with `npm run test:real`.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../e2e/stack.ts";
import { startLlama, type RealLlama } from "./llama.ts";

const MODEL = "tiny-qwen2-chat";
let llama: RealLlama;
let stack: Stack;
let props: {
  default_generation_settings: { n_ctx: number };
  chat_template_caps: { supports_tools: boolean };
};

beforeAll(async () => {
  // Long slots (8192 tokens each) so a generation is still running when a test aborts it.
  llama = await startLlama(["-c", "16384", "-np", "2", "--metrics"]);
  props = (await (await fetch(`${llama.url}/props`)).json()) as typeof props;
  stack = await startStack([llama.url]);
}, 120_000);

afterAll(async () => {
  await stack.stop();
  await llama.stop();
});

async function slots(): Promise<{ is_processing: boolean }[]> {
  return (await (await fetch(`${llama.url}/slots`)).json()) as { is_processing: boolean }[];
}

async function tokensPredicted(): Promise<number> {
  const text = await (await fetch(`${llama.url}/metrics`)).text();
  return Number(/^llamacpp:tokens_predicted_total (\d+)/m.exec(text)?.[1] ?? NaN);
}

describe("real llama-server through relay and tunnel", () => {
  it("advertises the context length and tool support the real /props reports", async () => {
    const [card, ...rest] = (await stack.client.models.list()).data;
    expect(rest).toEqual([]);
    expect(card).toMatchObject({
      id: MODEL,
      owned_by: "rig1",
      service_type: "llm",
      context_length: props.default_generation_settings.n_ctx,
    });
    expect(props.chat_template_caps.supports_tools).toBe(true);
    expect((card as unknown as { supported_features: string[] }).supported_features).toEqual([
      "streaming",
      "tool-use",
    ]);
  });

  it("answers a chat completion", async () => {
    const reply = await stack.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Say hello" }],
      max_tokens: 8,
      seed: 1,
    });
    expect(reply.object).toBe("chat.completion");
    expect(typeof reply.choices[0]?.message.content).toBe("string");
    expect(["stop", "length"]).toContain(reply.choices[0]?.finish_reason);
    expect(reply.usage?.completion_tokens).toBeLessThanOrEqual(8);
  });

  it("streams a chat completion in many chunks", async () => {
    const stream = await stack.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Say hello" }],
      max_tokens: 12,
      stream: true,
      stream_options: { include_usage: true },
    });
    let chunks = 0;
    let finish: string | null | undefined;
    let usage = 0;
    for await (const chunk of stream) {
      chunks++;
      finish ??= chunk.choices[0]?.finish_reason;
      usage = chunk.usage?.completion_tokens ?? usage;
    }
    expect(chunks).toBeGreaterThan(2);
    expect(["stop", "length"]).toContain(finish);
    expect(usage).toBeGreaterThan(0);
  });

  it("answers a legacy completion cut by max_tokens", async () => {
    const reply = await stack.client.completions.create({
      model: MODEL,
      prompt: "Once upon a time",
      max_tokens: 4,
      ignore_eos: true,
    } as OpenAI.CompletionCreateParamsNonStreaming);
    expect(reply.choices[0]?.finish_reason).toBe("length");
    expect(reply.usage?.completion_tokens).toBe(4);
  });

  it("frees the engine's slot when the consumer aborts a stream", async () => {
    const before = await tokensPredicted();
    const controller = new AbortController();
    const stream = await stack.client.chat.completions.create(
      {
        model: MODEL,
        messages: [{ role: "user", content: "Go on forever" }],
        stream: true,
        ignore_eos: true,
      } as OpenAI.ChatCompletionCreateParamsStreaming,
      { signal: controller.signal },
    );
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    await iterator.next();
    expect((await slots()).some((s) => s.is_processing)).toBe(true);
    controller.abort();
    await expect
      .poll(async () => (await slots()).some((s) => s.is_processing), {
        timeout: 10_000,
        interval: 100,
      })
      .toBe(false);
    // The slot was freed by the abort, not by finishing its 8192-token context.
    expect((await tokensPredicted()) - before).toBeLessThan(8000);
  });

  it("passes the engine's own 400 through for a prompt over the slot's context", async () => {
    const err = await stack.client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "word ".repeat(9000) }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toMatch(/exceeds the available context size/);
  });

  it("gives 502 upstream_error once the engine is dead", async () => {
    await llama.stop();
    const err = await stack.client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((err as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      type: "upstream_error",
    });
  });
});
