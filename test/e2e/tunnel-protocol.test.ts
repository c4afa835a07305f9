/**
 * Each tunnel protocol end to end with real processes (`club-provider relay`, `club-provider
 * start --tunnel-protocol …`, a fake llama-server): the daemon speaks what it was told to, and
 * answers, streams and cancellation work alike. The setting is checked where it is stored.
 */
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { runCli, scratchDir } from "./harness.ts";
import { startStack, type Stack } from "./stack.ts";

const MODEL = "tiny-qwen2-chat";
const chat = { model: MODEL, messages: [{ role: "user" as const, content: "hi" }] };

describe.each([
  ["1", 1],
  ["2", 2],
  ["auto", 2],
] as const)("club-provider start --tunnel-protocol %s", (flag, speaks) => {
  let fake: FakeLlamaServer;
  let stack: Stack;
  beforeAll(async () => {
    fake = new FakeLlamaServer({ tokens: ["Hello", " from", " the", " rig", "."] });
    await fake.start();
    stack = await startStack([fake.url], ["--tunnel-protocol", flag]);
  });
  afterAll(async () => {
    await stack.stop();
    await fake.stop();
  });

  it(`connects with protocol ${speaks} and answers`, async () => {
    const line = await stack.daemon.waitFor(/connected to the relay/);
    expect((JSON.parse(line) as { protocol: number }).protocol).toBe(speaks);
    const relayLine = await stack.relay.waitFor(/provider rig1 connected/);
    expect((JSON.parse(relayLine) as { protocol: number }).protocol).toBe(speaks);
    const reply = await stack.client.chat.completions.create(chat);
    expect(reply.choices[0]?.message.content).toBe("Hello from the rig.");
  });

  it("streams, and a consumer who leaves closes the engine's request", async () => {
    const parts: string[] = [];
    for await (const chunk of await stack.client.chat.completions.create({ ...chat, stream: true }))
      parts.push(chunk.choices[0]?.delta.content ?? "");
    expect(parts.join("")).toBe("Hello from the rig.");

    fake.pauseGenerations();
    const controller = new AbortController();
    const stream = await stack.client.chat.completions.create(
      { ...chat, stream: true },
      { signal: controller.signal },
    );
    const closed = once(fake, "client-closed");
    await stream[Symbol.asyncIterator]().next();
    controller.abort();
    await closed;
    fake.resumeGenerations();
    expect(fake.inFlight).toBe(0);
  });
});

describe("the tunnelProtocol setting", () => {
  it("takes auto, 1 and 2, and refuses anything else naming the flag", async () => {
    const home = scratchDir();
    for (const value of ["auto", "1", "2"]) {
      const set = runCli(["config", "set", "tunnelProtocol", value], { home });
      expect(await set.exited, set.output()).toBe(0);
    }
    const bad = runCli(["config", "set", "tunnelProtocol", "3"], { home });
    expect(await bad.exited).not.toBe(0);
    const flag = runCli(
      ["start", "--tunnel-protocol", "websocket", "--relay", "ws://127.0.0.1:9"],
      {
        home,
      },
    );
    expect(await flag.exited).not.toBe(0);
    expect(flag.output()).toContain("--tunnel-protocol: expected auto, 1 or 2");
  });
});
