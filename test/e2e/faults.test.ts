/**
 * A daemon left running for months: engines and relays that die and come back, slow consumers,
 * many streams, long silences, signals. Real processes on loopback; nothing may hang or leak.
 */
import { once } from "node:events";
import { Agent, fetch as undiciFetch } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { BulkEngine } from "../fakes/bulk-engine.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { freePort } from "../fakes/util.ts";
import { bulkRequest, stopThenDrain } from "./bulk-consumer.ts";
import { runCli, scratchDir, writeSecret } from "./harness.ts";
import { ALICE_KEY, startStack, type Stack } from "./stack.ts";

const MODEL = "tiny-qwen2-chat";
const chat = { model: MODEL, messages: [{ role: "user" as const, content: "hi" }] };
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function stackWith(
  urls: string[],
  args: string[] = [],
  relayArgs: string[] = [],
): Promise<Stack> {
  const stack = await startStack(urls, args, { CLUB_RESCAN_SECONDS: "1" }, relayArgs);
  cleanup.push(() => stack.stop());
  return stack;
}

async function fake(
  options: ConstructorParameters<typeof FakeLlamaServer>[0] = {},
): Promise<FakeLlamaServer> {
  const f = new FakeLlamaServer({ tokens: ["one", " two", " three"], ...options });
  await f.start();
  cleanup.push(() => f.stop());
  return f;
}

async function modelIds(stack: Stack): Promise<string[]> {
  return (await stack.client.models.list()).data.map((m) => m.id);
}

describe("faults", () => {
  it("ends a stream with an error when the engine dies, marks it down, and serves again once it is back", async () => {
    const engine = await fake();
    const port = Number(new URL(engine.url).port);
    const stack = await stackWith([engine.url]);
    engine.pauseGenerations();
    const stream = await stack.client.chat.completions.create({ ...chat, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    engine.kill();
    await expect(
      (async () => {
        for (;;) if ((await it.next()).done) return "ended";
      })(),
    ).rejects.toThrow("provider rig1 failed mid-stream");
    await expect.poll(() => modelIds(stack), { timeout: 15_000 }).toEqual([]);
    const back = await fake({ port });
    await expect.poll(() => modelIds(stack), { timeout: 15_000 }).toEqual([MODEL]);
    const reply = await stack.client.chat.completions.create(chat);
    expect(reply.choices[0]?.message.content).toBe("one two three");
    expect(back.requests.length).toBeGreaterThan(0);
  });

  it("aborts the engine's work when the relay dies mid-stream, then reconnects", async () => {
    const engine = await fake();
    const stack = await stackWith([engine.url]);
    engine.pauseGenerations();
    const stream = await stack.client.chat.completions.create({ ...chat, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const closed = once(engine, "client-closed");
    await stack.relay.stop("SIGKILL");
    await expect(
      (async () => {
        for (;;) if ((await it.next()).done) return "ended";
      })(),
    ).rejects.toThrow("terminated");
    await closed;
    engine.resumeGenerations();
    await stack.restartRelay();
    await stack.daemon.waitFor(/connected to the relay/, { nth: 2 });
    expect((await stack.client.chat.completions.create(chat)).choices[0]?.message.content).toBe(
      "one two three",
    );
  });

  it("keeps retrying when the relay is unreachable at boot, and connects once it is up", async () => {
    const engine = await fake();
    const home = scratchDir();
    const port = await freePort();
    const key = writeSecret(home, "key.txt", ALICE_KEY);
    const daemon = runCli(
      [
        "start",
        "--relay",
        `ws://127.0.0.1:${port}`,
        "--api-key-file",
        key,
        "--no-autodetect",
        "--status-port",
        "0",
        "--service",
        engine.url,
      ],
      { home },
    );
    cleanup.push(() => daemon.stop("SIGKILL"));
    await daemon.waitFor(/cannot reach the relay/, { nth: 3 });
    expect(daemon.child.exitCode).toBeNull();
    writeSecret(home, "keys.json", JSON.stringify({ [ALICE_KEY]: "alice" }));
    const relay = runCli(["relay", "--port", String(port), "--keys", `${home}/keys.json`], {
      home,
    });
    cleanup.push(() => relay.stop("SIGKILL"));
    await daemon.waitFor(/connected to the relay/, { timeoutMs: 40_000 });
  });

  it("carries 1000 concurrent streams over one tunnel", async () => {
    const engine = await fake({ totalSlots: 1000 });
    // One client, 1000 connections: more than one address may hold by default.
    const stack = await stackWith([engine.url], [], ["--max-connections-per-address", "2000"]);
    const dispatcher = new Agent({ connections: 1000 });
    cleanup.push(() => dispatcher.close());
    const one = async (): Promise<string> => {
      const res = await undiciFetch(`${stack.relayUrl}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${ALICE_KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ ...chat, stream: true }),
        dispatcher,
      });
      return res.text();
    };
    const bodies = await Promise.all(Array.from({ length: 1000 }, one));
    // Each stream carried its own whole reply, to the end.
    const whole = bodies.filter((b) => b.includes('" three"') && b.includes("data: [DONE]"));
    expect(whole.length).toBe(1000);
  }, 120_000);

  it("does not cut a generation that is silent for many heartbeat intervals before its first byte", async () => {
    const engine = await fake();
    const stack = await stackWith([engine.url]);
    engine.pauseGenerations();
    const reply = stack.client.chat.completions.create(chat);
    await new Promise<void>((resolve) => engine.once("request", () => resolve()));
    // The relay asks for 2 s heartbeats: 10 s of silence is five intervals, twice the liveness
    // limit. The wait is counted on the daemon's own clock: it probes the engine's /health once a
    // rescan, and rescans once a second (CLUB_RESCAN_SECONDS=1), so ten probes are ten seconds.
    const probes = (): number => engine.requests.filter((r) => r.path === "/health").length;
    const from = probes();
    await expect
      .poll(() => probes() - from, { timeout: 40_000, interval: 250 })
      .toBeGreaterThanOrEqual(10);
    engine.resumeGenerations();
    expect((await reply).choices[0]?.message.content).toBe("one two three");
    expect(stack.daemon.output().match(/connected to the relay/g)?.length).toBe(1);
  }, 60_000);

  it("exits at once on a second SIGTERM, without waiting for the grace period", async () => {
    const engine = await fake();
    const stack = await stackWith([engine.url], ["--grace", "600"]);
    engine.pauseGenerations();
    const stream = await stack.client.chat.completions.create({ ...chat, stream: true });
    await stream[Symbol.asyncIterator]().next();
    stack.daemon.child.kill("SIGTERM");
    await stack.daemon.waitFor(/SIGTERM: shutting down/);
    stack.daemon.child.kill("SIGTERM");
    expect(await stack.daemon.exited).toBe(1);
    engine.resumeGenerations();
  });

  it("reloads its settings on SIGHUP without dropping the tunnel", async () => {
    const first = await fake();
    const second = await fake({ alias: "second-model" });
    const stack = await stackWith([first.url]);
    expect(await modelIds(stack)).toEqual([MODEL]);
    const set = runCli(["config", "set", "services", JSON.stringify([{ url: second.url }])], {
      home: stack.home,
    });
    expect(await set.exited).toBe(0);
    stack.daemon.child.kill("SIGHUP");
    await expect.poll(() => modelIds(stack)).toEqual(["second-model", MODEL]);
    expect(stack.daemon.output().match(/connected to the relay/g)?.length).toBe(1);
    expect(stack.relay.output()).not.toMatch(/disconnected/);
  });

  it("holds several tunnel connections with --connections", async () => {
    const engine = await fake();
    const stack = await stackWith([engine.url], ["--connections", "2"]);
    await stack.daemon.waitFor(/connected to the relay/, { nth: 2 });
    await stack.relay.waitFor(/provider rig1 connected/, { nth: 2 });
    const replies = await Promise.all(
      [1, 2, 3, 4].map(() => stack.client.chat.completions.create(chat)),
    );
    expect(replies.every((r) => r.choices[0]?.message.content === "one two three")).toBe(true);
  });
});

describe("a slow consumer", () => {
  // The processes' memory while it waits is measured in the long tier
  // (test/long/slow-consumer.test.ts): here the bound is the bytes the engine was let produce.
  it("holds the engine back when the consumer stops reading a 100 MB body", async () => {
    // An OpenAI-compatible engine whose reply is 100 MB, produced only as fast as it is taken.
    const total = 100 * 1024 * 1024;
    const engine = new BulkEngine(total);
    await engine.start();
    cleanup.push(() => engine.stop());
    const stack = await stackWith([engine.url]);

    const res = await bulkRequest(stack.relayUrl);
    // The consumer stops reading: the engine must stop producing once the windows are full,
    // bounded by the windows (4 MiB per stream, 32 MiB per tunnel) plus socket buffers.
    const received = await stopThenDrain(res, engine, () =>
      expect(engine.produced).toBeLessThan(48 * 1024 * 1024),
    );
    expect(received).toBe(total);
  }, 120_000);
});
