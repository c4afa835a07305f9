/**
 * The spine end to end: openai client → relay → WebSocket tunnel → daemon → fake llama-server,
 * every piece a real process or server on loopback.
 */
import { once } from "node:events";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ErrorEnvelope } from "../../src/protocol/index.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { BOB_KEY, startStack, type Stack } from "./stack.ts";

const MODEL = "tiny-qwen2-chat";
let fake: FakeLlamaServer;
let doomed: FakeLlamaServer;
let stack: Stack;

beforeAll(async () => {
  fake = new FakeLlamaServer({ tokens: ["Hello", " from", " the", " rig", "."] });
  doomed = new FakeLlamaServer({ alias: "doomed" });
  await Promise.all([fake.start(), doomed.start()]);
  stack = await startStack([fake.url, doomed.url]);
});

afterAll(async () => {
  await stack.stop();
  await Promise.all([fake.stop(), doomed.stop()]);
});

/** The engine's last chat request (probes from re-scans may come after it). */
function lastChat(): (typeof fake.requests)[number] | undefined {
  return fake.requests.filter((r) => r.path === "/v1/chat/completions").at(-1);
}

/** A request outside the openai client, for what it cannot send; the answer must be JSON. */
async function raw(
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: ErrorEnvelope }> {
  const res = await fetch(`${stack.relayUrl}${path}`, init);
  return { status: res.status, body: (await res.json()) as ErrorEnvelope };
}

describe("spine: consumer → relay → tunnel → daemon → llama-server", () => {
  it("lists the rig's models with the club's capability fields", async () => {
    const page = await stack.client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(["doomed", MODEL]);
    expect(page.data.filter((m) => m.id === MODEL)).toEqual([
      {
        id: MODEL,
        object: "model",
        created: expect.any(Number),
        owned_by: "rig1",
        service_type: "llm",
        input_modalities: ["text"],
        output_modalities: ["text"],
        supported_features: ["streaming", "tool-use"],
        context_length: 256,
      },
    ]);
  });

  it("answers a chat completion", async () => {
    const reply = await stack.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(reply.choices[0]?.message.content).toBe("Hello from the rig.");
    expect(reply.choices[0]?.finish_reason).toBe("stop");
    // The engine got the model id it serves, not the club's id.
    expect((lastChat()?.body as { model: string }).model).toBe("/models/tiny-qwen2-chat.gguf");
  });

  it("streams a chat completion chunk by chunk", async () => {
    fake.pauseGenerations();
    const stream = await stack.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    const completedBefore = fake.completed;
    const parts: string[] = [];
    let chunks = 0;
    let sawFirstWhileEngineBusy = false;
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta.content;
      if (chunks++ === 0) {
        // The first chunk reached the client while the engine was held mid-generation.
        sawFirstWhileEngineBusy = fake.completed === completedBefore && fake.inFlight === 1;
        fake.resumeGenerations();
      }
      if (piece) parts.push(piece);
    }
    expect(sawFirstWhileEngineBusy).toBe(true);
    expect(parts.join("")).toBe("Hello from the rig.");
  });

  it("answers a legacy completion", async () => {
    const reply = await stack.client.completions.create({
      model: MODEL,
      prompt: "Once upon",
      max_tokens: 3,
    });
    expect(reply.choices[0]?.text).toBe("Hello from the");
    expect(reply.choices[0]?.finish_reason).toBe("length");
  });

  it("closes the engine's request when the consumer aborts a stream", async () => {
    fake.pauseGenerations();
    const controller = new AbortController();
    const stream = await stack.client.chat.completions.create(
      { model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true },
      { signal: controller.signal },
    );
    const closed = once(fake, "client-closed");
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    controller.abort();
    await closed;
    fake.resumeGenerations();
    expect(fake.inFlight).toBe(0);
  });

  it("strips the sharing fields before the provider sees the body", async () => {
    await raw("/v1/chat/completions", {
      method: "POST",
      headers: {
        authorization: `Bearer ${stack.client.apiKey}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "x" }],
        visibility: "PUBLIC",
        collection: "album",
      }),
    });
    const body = lastChat()?.body as Record<string, unknown>;
    expect(body).not.toHaveProperty("visibility");
    expect(body).not.toHaveProperty("collection");
    expect(lastChat()?.headers.authorization).toBeUndefined();
  });

  it("gives 404 no_provider for a model nobody serves", async () => {
    const err = await stack.client.chat.completions
      .create({ model: "no-such-model", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).error).toMatchObject({
      type: "no_provider",
    });
  });

  it("gives 401 for a wrong key and shows another member none of alice's models", async () => {
    const wrong = new OpenAI({
      baseURL: `${stack.relayUrl}/v1`,
      apiKey: "sk-wrong-key-123456",
      maxRetries: 0,
    });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const bob = new OpenAI({ baseURL: `${stack.relayUrl}/v1`, apiKey: BOB_KEY, maxRetries: 0 });
    expect((await bob.models.list()).data).toEqual([]);
    const err = await bob.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("answers async requests with 202 and a job, and malformed ones with 400", async () => {
    const auth = {
      authorization: `Bearer ${stack.client.apiKey}`,
      "content-type": "application/json",
    };
    const asyncReply = await raw("/v1/chat/completions", {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ model: MODEL, messages: [], async: true }),
    });
    expect(asyncReply).toMatchObject({ status: 202, body: { object: "inference.job" } });
    const bad = await raw("/v1/chat/completions", {
      method: "POST",
      headers: auth,
      body: "{not json",
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.type).toBe("invalid_request_error");
    const noModel = await raw("/v1/chat/completions", {
      method: "POST",
      headers: auth,
      body: "{}",
    });
    expect(noModel.status).toBe(400);
    expect(noModel.body.error.message).toContain("model");
  });

  it("gives 502 upstream_error when the engine is dead", async () => {
    doomed.kill();
    const err = await stack.client.chat.completions
      .create({ model: "doomed", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((err as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      type: "upstream_error",
    });
    expect((err as Error).message).toMatch(/cannot reach llama\.cpp/);
  });
});
