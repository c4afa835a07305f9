/**
 * The owner's say over when the rig serves, end to end: `club-provider pause` / `resume`
 * against a running daemon behind a real relay, and the auto-pause while a fake `nvidia-smi`
 * reports another program on the engine's GPU.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI, { APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { freePort } from "../fakes/util.ts";
import { fakeTools, fixture } from "../hardware/fake-tools.ts";
import { runCli, scratchDir, type CliProcess } from "./harness.ts";
import { ALICE_KEY, BOB_KEY, startStack, type Stack } from "./stack.ts";

const MODEL = "tiny-qwen2-chat";
/** Waits on loaded machines; a timeout here means it never came. */
const patiently = { timeout: 20_000 };

interface Providers {
  data: { name: string; paused: string | null; models: { id: string; paused: string | null }[] }[];
}

async function providers(relayUrl: string, key: string): Promise<Providers> {
  const res = await fetch(`${relayUrl}/v1/providers`, {
    headers: { authorization: `Bearer ${key}` },
  });
  return (await res.json()) as Providers;
}

async function ids(client: OpenAI): Promise<string[]> {
  return (await client.models.list()).data.map((m) => m.id);
}

/** A streamed chat, read to its end: the text it carried. */
async function streamed(client: OpenAI): Promise<string> {
  const stream = await client.chat.completions.create({
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    stream: true,
  });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  return text;
}

async function chatError(client: OpenAI): Promise<APIError> {
  const err = await client.chat.completions
    .create({ model: MODEL, messages: [{ role: "user", content: "hi" }] })
    .then(() => new Error("the request was served"))
    .catch((e: unknown) => e);
  if (!(err instanceof APIError)) throw err as Error;
  return err;
}

describe("club-provider pause and resume", () => {
  const llama = new FakeLlamaServer({ tokens: ["still", " here"] });
  let stack: Stack;
  let statusPort = 0;

  beforeAll(async () => {
    await llama.start();
    statusPort = await freePort();
    stack = await startStack([llama.url], ["--status-port", String(statusPort)]);
  });
  afterAll(async () => {
    await stack.stop();
    await llama.stop();
  });

  const cli = async (...args: string[]): Promise<{ code: number | null; out: string }> => {
    const run = runCli([...args, "--status-port", String(statusPort)], { home: stack.home });
    const code = await run.exited;
    return { code, out: run.output() };
  };

  it("drains on pause: a running stream finishes, the relay routes nothing new; resume serves again", async () => {
    expect(await ids(stack.client)).toEqual([MODEL]);
    llama.pauseGenerations();
    const running = streamed(stack.client);
    await expect.poll(() => llama.inFlight, patiently).toBe(1);

    const paused = await cli("pause", "--reason", "gaming tonight");
    expect(paused).toEqual({ code: 0, out: "paused: paused by its owner: gaming tonight\n" });
    await expect.poll(() => ids(stack.client), patiently).toEqual([]);
    expect((await providers(stack.relayUrl, ALICE_KEY)).data[0]).toMatchObject({
      name: "rig1",
      paused: "paused by its owner: gaming tonight",
    });
    const refused = await chatError(stack.client);
    expect([refused.status, refused.type]).toEqual([404, "no_provider"]);
    const status = await cli("status");
    expect(status.out).toMatch(/^PAUSED: {4}paused by its owner: gaming tonight/m);

    llama.resumeGenerations();
    expect(await running).toBe("still here");

    expect(await cli("resume")).toEqual({ code: 0, out: "serving\n" });
    await expect.poll(() => ids(stack.client), patiently).toEqual([MODEL]);
    expect((await providers(stack.relayUrl, ALICE_KEY)).data[0]?.paused).toBe(null);
    expect((await cli("status")).out).not.toMatch(/PAUSED/);
  });

  it("stays paused across a restart until resumed", async () => {
    expect((await cli("pause")).code).toBe(0);
    await expect.poll(() => ids(stack.client), patiently).toEqual([]);
    await stack.daemon.stop();
    stack.daemon = await stack.startDaemon();
    await stack.daemon.waitFor(/starting paused: paused by its owner/);
    // The pause rides in the hello, which the relay reads before it answers welcome: so once
    // the daemon says it is connected, one read must see the rig paused and its model unlisted.
    await stack.daemon.waitFor(/connected to the relay/);
    expect((await providers(stack.relayUrl, ALICE_KEY)).data[0]?.paused).toBe(
      "paused by its owner",
    );
    expect(await ids(stack.client)).toEqual([]);
    expect((await cli("resume")).code).toBe(0);
    await expect.poll(() => ids(stack.client), patiently).toEqual([MODEL]);
  });

  it("says how to fix it when no daemon answers", async () => {
    const run = runCli(["pause", "--status-port", String(await freePort())], {
      home: stack.home,
    });
    expect(await run.exited).toBe(1);
    expect(run.output()).toMatch(/no daemon answers on 127\.0\.0\.1:\d+/);
  });
});

const GPU0 = "GPU-8c1e0d52-7a3f-b4e1-93d2-5f0a61c7e2b4";
/** A pid no process of this machine has (above the largest pid_max Linux allows). */
const BLENDER_PID = 4194400;

describe("auto-pause while another program uses the GPU", () => {
  const llama = new FakeLlamaServer({ tokens: ["rendered", " around"] });
  let relay: Relay;
  let daemon: CliProcess | undefined;
  const bob = (): OpenAI =>
    new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: BOB_KEY, maxRetries: 0 });

  beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      keys: new KeyRing({ [ALICE_KEY]: "alice", [BOB_KEY]: "bob" }),
      log: silentLogger,
      heartbeatMs: 1000,
    });
    await llama.start();
  });
  afterAll(async () => {
    await daemon?.stop();
    await relay.close();
    await llama.stop();
  });

  it("pauses the GPU's models for other members, lets a running stream finish, and serves again after resumeSeconds", async () => {
    // The engine is this test's own process: the daemon must find it through /proc.
    const engineOnly = `${process.pid}, /usr/local/bin/llama-server, ${GPU0}, 20480\n`;
    const withBlender = `${engineOnly}${BLENDER_PID}, /opt/blender/blender, ${GPU0}, 3120\n`;
    const xml = fixture("nvidia-smi/query-processes.xml").replaceAll(
      "<pid>1873</pid>",
      `<pid>${process.pid}</pid>`,
    );
    const rules = (apps: string) => [
      { args: "--query-gpu=index,uuid,name", stdout: fixture("nvidia-smi/1-gpu.csv") },
      { args: "--query-gpu=index,memory.used", stdout: "0, 20113, 98, 72, 341.10\n" },
      { args: "--query-compute-apps", stdout: apps },
      // Xorg and gnome-shell hold graphics contexts on GPU 0 all along: never counted. A game
      // on GPU 1 does not touch GPU 0's engine.
      { args: "-q -x", stdout: xml },
    ];
    const fakes = fakeTools({ "nvidia-smi": rules(engineOnly) });
    const home = scratchDir();
    mkdirSync(join(home, "config", "club-provider"), { recursive: true });
    writeFileSync(
      join(home, "config", "club-provider", "config.json"),
      JSON.stringify({
        heartbeatSeconds: 1,
        autoPause: { afterSeconds: 0.5, resumeSeconds: 1, pollSeconds: 0.2 },
      }),
    );
    const statusPort = await freePort();
    daemon = runCli(
      [
        "start",
        "--relay",
        relay.url.replace("http", "ws"),
        "--service",
        llama.url,
        "--no-autodetect",
        "--share",
        MODEL,
      ],
      {
        home,
        env: { PATH: fakes.dir, CLUB_API_KEY: ALICE_KEY, CLUB_STATUS_PORT: String(statusPort) },
      },
    );
    await daemon.waitFor(/connected to the relay/);
    await expect.poll(() => ids(bob()), patiently).toEqual([MODEL]);
    const polls = () => fakes.calls("nvidia-smi").filter((c) => c.includes("compute-apps")).length;
    const status = async () =>
      (
        (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as {
          pause: { paused_models: Record<string, string> };
        }
      ).pause;

    // Polls 200 ms apart: after six, the engine itself has been on the GPU far past afterSeconds.
    const before = polls();
    await expect.poll(polls, patiently).toBeGreaterThan(before + 5);
    expect((await status()).paused_models).toEqual({});
    expect(await ids(bob())).toEqual([MODEL]);

    llama.pauseGenerations();
    const running = streamed(bob());
    await expect.poll(() => llama.inFlight, patiently).toBe(1);
    fakes.set("nvidia-smi", rules(withBlender));
    await expect.poll(() => ids(bob()), patiently).toEqual([]);
    const reason = `GPU 0 is in use by another program (blender, pid ${BLENDER_PID})`;
    expect((await status()).paused_models).toEqual({ [MODEL]: reason });
    const mine = await providers(relay.url, ALICE_KEY);
    expect(mine.data[0]?.paused).toBe(null);
    expect(mine.data[0]?.models).toMatchObject([{ id: MODEL, paused: reason }]);
    llama.resumeGenerations();
    expect(await running).toBe("rendered around");

    fakes.set("nvidia-smi", rules(engineOnly));
    await expect.poll(() => ids(bob()), patiently).toEqual([MODEL]);
    expect((await status()).paused_models).toEqual({});
  });
});
