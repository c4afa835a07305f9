/**
 * Usage against the real llama-server (built by test/real/llama-server.sh), through relay and
 * tunnel: the tokens the relay counts for a streamed chat equal what llama-server reported for
 * the same call made directly, and a consumer who did not ask for usage gets the same chunks
 * as from llama-server without it. Run with `npm run test:real`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE_KEY, startStack, type Stack } from "../e2e/stack.ts";
import { startLlama, type RealLlama } from "./llama.ts";

const CHAT = "tiny-qwen2-chat";
let chat: RealLlama;
let stack: Stack;

beforeAll(async () => {
  chat = await startLlama();
  stack = await startStack([chat.url]);
}, 120_000);

afterAll(async () => {
  await stack.stop();
  await chat.stop();
});

interface Chunk {
  choices: unknown[];
  usage?: { prompt_tokens: number; completion_tokens: number };
}

/** A streamed chat's chunks (without `[DONE]`). */
async function stream(base: string, body: Record<string, unknown>): Promise<Chunk[]> {
  const res = await fetch(`${base}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${ALICE_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ ...body, stream: true }),
  });
  expect(res.status).toBe(200);
  return [...(await res.text()).matchAll(/^data: (.*)$/gm)]
    .map((m) => m[1] ?? "")
    .filter((d) => d !== "[DONE]")
    .map((d) => JSON.parse(d) as Chunk);
}

interface Row {
  model: string;
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
}

async function used(): Promise<Row> {
  const res = await fetch(`${stack.relayUrl}/v1/usage?model=${CHAT}`, {
    headers: { authorization: `Bearer ${ALICE_KEY}` },
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { used: Row[] };
  return body.used[0] ?? { model: CHAT, requests: 0, prompt_tokens: 0, completion_tokens: 0 };
}

/** The row once `requests` requests are booked (the stream's end may reach us first). */
async function booked(requests: number): Promise<Row> {
  await expect.poll(async () => (await used()).requests).toBe(requests);
  return used();
}

describe("real llama-server: usage through the club", () => {
  const body = {
    messages: [{ role: "user", content: "Say hello" }],
    max_tokens: 8,
    seed: 7,
    temperature: 0,
  };

  it("counts the tokens llama-server reported for a streamed chat", async () => {
    const direct = await stream(chat.url, { ...body, stream_options: { include_usage: true } });
    const reported = direct.at(-1)?.usage;
    expect(reported?.completion_tokens).toBeGreaterThan(0);

    const before = await used();
    const asked = await stream(stack.relayUrl, {
      ...body,
      model: CHAT,
      stream_options: { include_usage: true },
    });
    // Cached prompt tokens differ from call to call; the counts do not.
    const { prompt_tokens, completion_tokens } = reported ?? {};
    expect(asked.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens, completion_tokens },
    });
    const after = await booked(before.requests + 1);
    expect(after.prompt_tokens - before.prompt_tokens).toBe(reported?.prompt_tokens);
    expect(after.completion_tokens - before.completion_tokens).toBe(reported?.completion_tokens);
  });

  it("gives a consumer who did not ask the chunks llama-server gives, and still counts", async () => {
    const direct = await stream(chat.url, body);
    const before = await used();
    const club = await stream(stack.relayUrl, { ...body, model: CHAT });
    expect(club.map((c) => c.choices)).toEqual(direct.map((c) => c.choices));
    expect(club.some((c) => "usage" in c)).toBe(false);
    const reported = (
      await stream(chat.url, { ...body, stream_options: { include_usage: true } })
    ).at(-1)?.usage;
    const after = await booked(before.requests + 1);
    expect(after.prompt_tokens - before.prompt_tokens).toBe(reported?.prompt_tokens);
    expect(after.completion_tokens - before.completion_tokens).toBe(reported?.completion_tokens);
  });
});
