/**
 * Capacity across the whole path: a full provider answers 429 with Retry-After.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { runCli } from "./harness.ts";
import { ALICE_KEY, startStack, type Stack } from "./stack.ts";

const chat = { model: "tiny-qwen2-chat", messages: [{ role: "user" as const, content: "hi" }] };
let small: FakeLlamaServer;
let stack: Stack;

beforeAll(async () => {
  small = new FakeLlamaServer({ totalSlots: 1, tokens: ["small"] });
  await small.start();
  stack = await startStack([small.url]);
  // No waiting room: a request beyond the slots is refused at once.
  const set = runCli(["config", "set", "queueSize", "0"], { home: stack.home });
  expect(await set.exited).toBe(0);
  await stack.daemon.stop();
  stack.daemon = await stack.startDaemon();
});

afterAll(async () => {
  await stack.stop();
  await small.stop();
});

describe("capacity through the relay", () => {
  it("gives the consumer 429 with Retry-After when the only provider is full", async () => {
    small.pauseGenerations();
    const running = stack.client.chat.completions.create(chat);
    await new Promise<void>((resolve) => small.once("request", () => resolve()));
    const res = await fetch(`${stack.relayUrl}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${ALICE_KEY}`, "content-type": "application/json" },
      body: JSON.stringify(chat),
    });
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toMatchObject({
      error: { message: expect.stringMatching(/at capacity/) },
    });
    small.resumeGenerations();
    expect((await running).choices[0]?.message.content).toBe("small");
  });
});
