/**
 * A member's JSON bodies stay charged to `--upload-buffer` while their requests run, not only
 * while they arrive: requests waiting at a slow rig hold their bodies at the relay, and before
 * there was no bound on how many. A real relay and daemon, and a fake llama-server that holds
 * its answers.
 */
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { ALICE_KEY, BOB_KEY, startStack, type Stack } from "./stack.ts";

let llama: FakeLlamaServer;
let stack: Stack;

beforeAll(async () => {
  llama = new FakeLlamaServer();
  await llama.start();
  stack = await startStack([llama.url], [], {}, ["--upload-buffer", "1"]);
});

afterAll(async () => {
  await stack.stop();
  await llama.stop();
});

/** A chat of about 400 KB (past what arrives whole with the headers) as `key`. */
function chat(key: string): Promise<Response> {
  return fetch(`${stack.relayUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: "tiny-qwen2-chat",
      messages: [{ role: "user", content: "x".repeat(400_000) }],
    }),
  });
}

describe("a member's request bodies at the relay", () => {
  it("count against --upload-buffer until their answers end, per member", async () => {
    llama.pauseGenerations();
    const waiting: Promise<Response>[] = [];
    for (let i = 1; i <= 2; i++) {
      const arrived = once(llama, "request");
      waiting.push(chat(ALICE_KEY));
      await arrived; // read whole at the relay, waiting at the engine
    }
    // 800 KB of Alice's held: a third 400 KB is past her 1 MiB.
    const refused = await chat(ALICE_KEY);
    expect(refused.status).toBe(429);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(
      "the most one member may hold at once is 1 MiB",
    );
    // Another member's budget is their own: Bob's body is read, and routed (to no provider:
    // the rig shares nothing with him).
    expect((await chat(BOB_KEY)).status).toBe(404);
    llama.resumeGenerations();
    for (const res of await Promise.all(waiting)) expect(res.status).toBe(200);
    // Answered, their bodies are let go.
    expect((await chat(ALICE_KEY)).status).toBe(200);
  });
});
