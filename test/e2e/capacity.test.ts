/**
 * Capacity across the whole path: a full provider answers 429 with Retry-After, and the relay
 * tries another provider of the model before the consumer sees it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { runCli, type CliProcess } from "./harness.ts";
import { ALICE_KEY, startProvider, startStack, type Stack } from "./stack.ts";

/** Waits for an event on a loaded machine; a timeout here means it never came. */
const patiently = { timeout: 15_000 };
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

/** Chat requests an engine received (probes of `/v1/models`, `/props`, … not counted). */
function chats(engine: FakeLlamaServer): number {
  return engine.requests.filter((r) => r.path === "/v1/chat/completions").length;
}

/** The statuses a daemon logged for one request id, in order. */
function statuses(daemon: CliProcess, requestId: string): number[] {
  return daemon
    .output()
    .split("\n")
    .filter((l) => l.startsWith("{") && l.includes(requestId))
    .map((l) => (JSON.parse(l) as { status?: number }).status)
    .filter((s): s is number => typeof s === "number");
}

async function post(): Promise<Response> {
  return fetch(`${stack.relayUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${ALICE_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(chat),
  });
}

describe("capacity through the relay", () => {
  it("gives the consumer 429 with Retry-After when the only provider is full", async () => {
    small.pauseGenerations();
    const running = stack.client.chat.completions.create(chat);
    await new Promise<void>((resolve) => small.once("request", () => resolve()));
    const res = await post();
    expect(res.status).toBe(429);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await res.json()).toMatchObject({
      error: { message: expect.stringMatching(/at capacity/) },
    });
    small.resumeGenerations();
    expect((await running).choices[0]?.message.content).toBe("small");
  });
});

describe("two providers serving one model", () => {
  let big: FakeLlamaServer;
  let rig2: CliProcess;

  beforeAll(async () => {
    // Its own home and engine: nothing shared with rig1 but the member's key and the model id.
    big = new FakeLlamaServer({ totalSlots: 2, tokens: ["big"] });
    await big.start();
    rig2 = await startProvider(stack, "rig2", [big.url], { queueSize: "0" });
  });

  afterAll(async () => {
    await rig2.stop("SIGKILL");
    await big.stop();
  });

  it("retries a full provider's request on the other one, which the full one's engine never sees", async () => {
    small.pauseGenerations();
    big.pauseGenerations();
    const smallBefore = chats(small);
    // The relay sends each request to the provider with the fewest in flight, rig1 (connected
    // first) on a tie: r1 to rig1, which is then full; r2 to rig2.
    const r1 = stack.client.chat.completions.create(chat);
    await expect.poll(() => small.inFlight, patiently).toBe(1);
    const r2 = stack.client.chat.completions.create(chat);
    await expect.poll(() => big.inFlight, patiently).toBe(1);
    // One each: the relay picks rig1, which answers 429; the relay tries rig2 instead.
    const r3 = stack.client.chat.completions.create(chat).withResponse();
    await expect.poll(() => big.inFlight, patiently).toBe(2);
    expect(chats(small) - smallBefore).toBe(1);

    // Every provider full now: the consumer gets the 429, in the club's envelope.
    const refused = await post();
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    expect(await refused.json()).toMatchObject({
      error: { type: "rate_limit_error", message: expect.stringMatching(/at capacity/) },
    });
    const refusedId = refused.headers.get("x-club-request-id") ?? "";
    expect(refusedId).toMatch(/^req_/);
    // Both were asked (their log lines may trail the answer).
    await expect.poll(() => statuses(stack.daemon, refusedId), patiently).toEqual([429]);
    await expect.poll(() => statuses(rig2, refusedId), patiently).toEqual([429]);

    small.resumeGenerations();
    big.resumeGenerations();
    expect((await r1).choices[0]?.message.content).toBe("small");
    expect((await r2).choices[0]?.message.content).toBe("big");
    const { data, response } = await r3;
    expect(data.choices[0]?.message.content).toBe("big");
    const id = response.headers.get("x-club-request-id") ?? "";
    await expect.poll(() => statuses(stack.daemon, id), patiently).toEqual([429]);
    await expect.poll(() => statuses(rig2, id), patiently).toEqual([200]);
    expect(chats(small) - smallBefore).toBe(1);
  });
});
