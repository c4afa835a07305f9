/**
 * A streamed answer whose engine says nothing for a long time (a long prompt being read) is
 * committed by the relay, 200 and SSE comments, so the consumer's client and any proxy in
 * between see a live response; what the provider answers then still reaches the consumer, as
 * the stream or as a final error event. The relay here commits after 1 s of silence.
 */
import { once } from "node:events";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HeldEngine } from "../fakes/held-engine.ts";
import { readAll, readUntil, sseContent } from "../fakes/util.ts";
import { ALICE_KEY, startStack, type Stack } from "./stack.ts";

const messages = [{ role: "user" as const, content: "a very long prompt" }];
let engine: HeldEngine;
let stack: Stack;

beforeAll(async () => {
  engine = new HeldEngine(["one", " two"]);
  stack = await startStack([await engine.start()], [], {}, ["--keepalive", "1"]);
});

afterAll(async () => {
  await stack.stop();
  await engine.stop();
});

function post(body: Record<string, unknown>): Promise<Response> {
  return fetch(`${stack.relayUrl}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${ALICE_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "slow", messages, ...body }),
  });
}

describe("a streamed answer that has not begun", () => {
  it("gets its 200 and SSE comments while the engine is silent, then the tokens", async () => {
    const res = await post({ stream: true });
    // Headers while the engine has said nothing at all.
    expect(engine.held).toBe(1);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream");
    expect(res.headers.get("x-club-request-id")).toMatch(/^req_/);
    const body = Readable.fromWeb(res.body!);
    const comments = await readUntil(body, ": keep-alive\n\n");
    expect(comments).toMatch(/^(: keep-alive\n\n)+$/);
    engine.release();
    const text = await readAll(body);
    expect(sseContent(text)).toBe("one two");
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
  });

  it("ends with the engine's error as an event, while a request not streamed keeps its status", async () => {
    const refusal = {
      status: 400,
      body: { error: { message: "the prompt is too long", type: "invalid_request_error" } },
    };
    const whole = post({});
    await once(engine, "request");
    // The streamed one waits in the daemon's queue (the engine takes one request at a time).
    // It comes second: once it is committed, the first has been silent for longer.
    const streamed = await stack.client.chat.completions.create({
      model: "slow",
      messages,
      stream: true,
    });
    expect(engine.held).toBe(1);
    const next = once(engine, "request");
    engine.release(refusal);
    const res = await whole;
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { message: "the prompt is too long" } });
    await next;
    engine.release(refusal);
    await expect(
      (async () => {
        for await (const _ of streamed);
      })(),
    ).rejects.toThrow(/the prompt is too long/);
  });

  it("ends with an error event when the provider goes away before answering", async () => {
    const streamed = await stack.client.chat.completions.create({
      model: "slow",
      messages,
      stream: true,
    });
    expect(engine.held).toBe(1);
    await stack.daemon.stop("SIGKILL");
    await expect(
      (async () => {
        for await (const _ of streamed);
      })(),
    ).rejects.toThrow(/provider rig1 disconnected before answering/);
    engine.release();
  });
});
