/**
 * The spine when things go wrong: a relay restart, a provider vanishing mid-request, a refused
 * key. Real processes on loopback; nothing may hang.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { runCli, writeSecret } from "./harness.ts";
import { startStack, type Stack } from "./stack.ts";

const MODEL = "tiny-qwen2-chat";
let fake: FakeLlamaServer;
let stack: Stack;

beforeAll(async () => {
  fake = new FakeLlamaServer({ tokens: ["one", " two", " three"] });
  await fake.start();
  stack = await startStack([fake.url]);
});

afterAll(async () => {
  await stack.stop();
  await fake.stop();
});

const chat = { model: MODEL, messages: [{ role: "user" as const, content: "hi" }] };

describe("spine faults", () => {
  it("reconnects after the relay restarts and serves again", async () => {
    await stack.relay.stop("SIGKILL");
    await stack.restartRelay();
    await stack.daemon.waitFor(/connected to the relay/, { nth: 2 });
    const reply = await stack.client.chat.completions.create(chat);
    expect(reply.choices[0]?.message.content).toBe("one two three");
  });

  it("ends a stream with an error when the provider vanishes mid-stream", async () => {
    fake.pauseGenerations();
    const stream = await stack.client.chat.completions.create({ ...chat, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    await stack.daemon.stop("SIGKILL");
    const rest = (async () => {
      for (;;) if ((await iterator.next()).done) return "ended";
    })();
    await expect(rest).rejects.toThrow(/disconnected mid-stream/);
    fake.resumeGenerations();
  });

  it("answers 502 when the provider vanishes before answering, then 404 once it is gone", async () => {
    stack.daemon = await stack.startDaemon();
    fake.pauseGenerations();
    const pending = stack.client.chat.completions.create(chat).catch((e: unknown) => e);
    await new Promise<void>((resolve) => fake.once("request", () => resolve()));
    await stack.daemon.stop("SIGKILL");
    const err = await pending;
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).toBe(502);
    expect((err as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      type: "upstream_error",
    });
    fake.resumeGenerations();
    const gone = await stack.client.chat.completions.create(chat).catch((e: unknown) => e);
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("drains on SIGTERM: no new work, the stream in flight finishes, exit 0", async () => {
    await stack.daemon.stop("SIGKILL");
    stack.daemon = await stack.startDaemon();
    fake.pauseGenerations();
    const stream = await stack.client.chat.completions.create({ ...chat, stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    await iterator.next();
    stack.daemon.child.kill("SIGTERM");
    await stack.relay.waitFor(/is draining/, { nth: 1 });
    const refused = await stack.client.chat.completions.create(chat).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
    fake.resumeGenerations();
    let text = "";
    for (let r = await iterator.next(); !r.done; r = await iterator.next())
      text += r.value.choices[0]?.delta.content ?? "";
    // The first chunk carried only the role; every word arrived after SIGTERM.
    expect(text).toBe("one two three");
    expect(await stack.daemon.exited).toBe(0);
  });

  it("stops with a clear message when the relay refuses the key", async () => {
    const keyFile = writeSecret(stack.home, "wrong.txt", "sk-not-a-member-000");
    const daemon = runCli(
      [
        "start",
        "--relay",
        stack.relayUrl.replace("http", "ws"),
        "--api-key-file",
        keyFile,
        "--no-autodetect",
        "--status-port",
        "0",
      ],
      { home: stack.home },
    );
    expect(await daemon.exited).toBe(1);
    expect(daemon.output()).toMatch(/refused the API key \(HTTP 401\)/);
    expect(daemon.output()).not.toContain("sk-not-a-member-000");
  });

  it("refuses a key file other users can read", async () => {
    const keyFile = writeSecret(stack.home, "loose.txt", "sk-alice-e2e-0123456789");
    const { chmodSync } = await import("node:fs");
    chmodSync(keyFile, 0o644);
    const daemon = runCli(["start", "--relay", "ws://127.0.0.1:1", "--api-key-file", keyFile], {
      home: stack.home,
    });
    expect(await daemon.exited).toBe(1);
    expect(daemon.output()).toMatch(/readable by other users .*chmod 600/);
  });
});
