/**
 * Generations that say nothing at all for five minutes before their first byte (a long prompt on
 * a slow rig): no status, no headers, no body. Many HTTP stacks give up at 300 s, hence 310 s.
 * Nothing on our path may cut them: not the relay's HTTP server, the tunnel's liveness checks,
 * nor the daemon's engine client. The consumer's own client is the last risk: Node's `fetch`
 * (the `openai` package's default) waits 300 s for headers, which the relay's SSE keep-alive
 * answers for a streamed request; a request not streamed needs a client without that limit.
 */
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import OpenAI from "openai";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, expect, it } from "vitest";
import { runCli } from "../e2e/harness.ts";
import { HeldEngine } from "../fakes/held-engine.ts";
import { ALICE_KEY, startStack, type Stack } from "../e2e/stack.ts";

const SILENCE_MS = 310_000;
const messages = [{ role: "user" as const, content: "think for a long time" }];

let stack: Stack | undefined;
let engine: HeldEngine | undefined;
const patient = new Agent({ headersTimeout: 0, bodyTimeout: 0 });

afterAll(async () => {
  await stack?.stop();
  await engine?.stop();
  await patient.close();
});

it("cuts no generation silent for 310 s before its first byte, streamed or not", async () => {
  engine = new HeldEngine(["one", " two", " three"]);
  const url = await engine.start();
  // The e2e stack's relay: 2 s heartbeats, the default 15 s keep-alive.
  stack = await startStack([url]);
  // Room for both requests at once at the engine.
  const services = JSON.stringify([{ url, maxConcurrent: 2 }]);
  expect(await runCli(["config", "set", "services", services], { home: stack.home }).exited).toBe(
    0,
  );
  await stack.daemon.stop();
  stack.daemon = await stack.startDaemon();

  const base = { baseURL: `${stack.relayUrl}/v1`, apiKey: ALICE_KEY, maxRetries: 0 };
  // The openai client as a consumer sets it up for slow models: a timeout past the silence.
  const client = new OpenAI({ ...base, timeout: 2 * SILENCE_MS });
  const streamed = (async () => {
    const stream = await client.chat.completions.create({ model: "slow", messages, stream: true });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    return text;
  })();
  // A client that waits as long as it takes (as Python's with `timeout=None`).
  const patientClient = new OpenAI({
    ...base,
    timeout: 2 * SILENCE_MS,
    fetch: ((input: string, init: RequestInit) =>
      undiciFetch(input, { ...init, dispatcher: patient } as never)) as unknown as typeof fetch,
  });
  const whole = patientClient.chat.completions.create({ model: "slow", messages });

  while (engine.held < 2) await once(engine, "request");
  await sleep(SILENCE_MS);
  expect([engine.held, engine.cut]).toEqual([2, 0]);
  engine.release();

  expect(await streamed).toBe("one two three");
  expect((await whole).choices[0]?.message.content).toBe("one two three");
  expect(engine.cut).toBe(0);
  // The tunnel carried the silence: no reconnect, the relay never dropped the provider.
  expect(stack.daemon.output().match(/connected to the relay/g)?.length).toBe(1);
  expect(stack.relay.output()).not.toMatch(/silent for|rig1 disconnected: (?!closed \(1001)/);
});
