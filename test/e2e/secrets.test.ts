/**
 * The API key stays a secret: a daemon given it through `--api-key-file` or `CLUB_API_KEY`, both
 * logging at debug, never prints it, never shows it in its command line (what `ps` shows), and
 * never sends it in a control message (hello, heartbeats); the relay at debug never logs a
 * consumer's key. The daemons reach the relay through a recording WebSocket proxy, so the test
 * sees every control message the relay received.
 */
import { once } from "node:events";
import { readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer, type RawData } from "ws";
import { TUNNEL_SUBPROTOCOL } from "../../src/protocol/index.ts";
import { FakeLlamaServer } from "../fakes/llama-server.ts";
import { runCli, scratchDir, writeSecret, type CliProcess } from "./harness.ts";
import { ALICE_KEY, BOB_KEY } from "./stack.ts";

const WRONG_KEY = "sk-wrong-e2e-9876543210";
const MODEL = "tiny-qwen2-chat";

/** A control message as it crossed the proxy, with the tunnel (in order of arrival) it was on. */
interface Recorded {
  tunnel: number;
  from: "daemon" | "relay";
  text: string;
}

/**
 * A WebSocket proxy in front of the relay: each tunnel is forwarded as it comes (the daemon's
 * Authorization and subprotocol included) and its text frames are recorded both ways.
 * HTTP/2 frames are passed on unrecorded: HPACK may Huffman-code a header, so a search in them
 * proves nothing.
 */
async function recordingProxy(
  relayWs: string,
): Promise<{ url: string; recorded: Recorded[]; close(): void }> {
  const recorded: Recorded[] = [];
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    perMessageDeflate: false,
    handleProtocols: (offered) => (offered.has(TUNNEL_SUBPROTOCOL) ? TUNNEL_SUBPROTOCOL : false),
  });
  let tunnels = 0;
  wss.on("connection", (down: WebSocket, req: IncomingMessage) => {
    const tunnel = tunnels++;
    const up = new WebSocket(relayWs + (req.url ?? "/"), TUNNEL_SUBPROTOCOL, {
      headers: { authorization: req.headers.authorization ?? "" },
      perMessageDeflate: false,
    });
    const pending: [RawData, boolean][] = [];
    const text = (data: RawData): string => Buffer.from(data as Buffer).toString("utf8");
    down.on("message", (data, isBinary) => {
      if (!isBinary) recorded.push({ tunnel, from: "daemon", text: text(data) });
      if (up.readyState === WebSocket.OPEN) up.send(data, { binary: isBinary });
      else pending.push([data, isBinary]);
    });
    up.on("open", () => {
      for (const [data, binary] of pending.splice(0)) up.send(data, { binary });
    });
    up.on("message", (data, isBinary) => {
      if (!isBinary) recorded.push({ tunnel, from: "relay", text: text(data) });
      down.send(data, { binary: isBinary });
    });
    up.on("close", () => down.terminate());
    down.on("close", () => up.terminate());
    up.on("error", () => down.terminate());
    down.on("error", () => up.terminate());
  });
  await once(wss, "listening");
  return {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    recorded,
    close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
    },
  };
}

let engine: FakeLlamaServer;
let relay: CliProcess;
let relayUrl: string;
let proxy: Awaited<ReturnType<typeof recordingProxy>>;
const daemons: { how: string; daemon: CliProcess }[] = [];

beforeAll(async () => {
  engine = new FakeLlamaServer({ tokens: ["one", " two"] });
  await engine.start();
  const home = scratchDir();
  writeFileSync(
    join(home, "keys.json"),
    JSON.stringify({ [ALICE_KEY]: "alice", [BOB_KEY]: "bob" }),
  );
  relay = runCli(
    [
      "relay",
      "--port",
      "0",
      "--keys",
      join(home, "keys.json"),
      "--heartbeat",
      "1",
      "--rate-limit",
      "0",
      "--log-level",
      "debug",
    ],
    { home },
  );
  const line = await relay.waitFor(/relay ready: OpenAI base URL (http:\/\/\S+)\/v1/);
  relayUrl = /(http:\/\/127\.0\.0\.1:\d+)/.exec(line)?.[1] ?? "";
  proxy = await recordingProxy(relayUrl.replace("http", "ws"));

  const common = (name: string): string[] => [
    "start",
    "--relay",
    proxy.url,
    "--name",
    name,
    "--no-autodetect",
    "--status-port",
    "0",
    "--service",
    engine.url,
  ];
  const fileHome = scratchDir();
  const keyFile = writeSecret(fileHome, "key.txt", ALICE_KEY);
  daemons.push({
    how: "--api-key-file",
    daemon: runCli([...common("rig-file"), "--api-key-file", keyFile, "--log-level", "debug"], {
      home: fileHome,
    }),
  });
  daemons.push({
    how: "CLUB_API_KEY",
    daemon: runCli(common("rig-env"), {
      home: scratchDir(),
      env: { CLUB_API_KEY: ALICE_KEY, CLUB_LOG_LEVEL: "debug" },
    }),
  });
  await Promise.all(daemons.map(({ daemon }) => daemon.waitFor(/connected to the relay/)));
});

afterAll(async () => {
  await Promise.all(daemons.map(({ daemon }) => daemon.stop("SIGKILL")));
  proxy.close();
  await relay.stop("SIGKILL");
  await engine.stop();
});

/** The control messages the daemon called `name` sent, once it sent `heartbeats` heartbeats. */
async function sentBy(name: string, heartbeats: number): Promise<{ type: string }[]> {
  const mine = (): { type: string }[] => {
    const sent = proxy.recorded
      .filter((r) => r.from === "daemon")
      .map((r) => ({
        tunnel: r.tunnel,
        message: JSON.parse(r.text) as { type: string; provider?: { name: string } },
      }));
    const hello = sent.find((s) => s.message.type === "hello" && s.message.provider?.name === name);
    return sent.filter((s) => s.tunnel === hello?.tunnel).map((s) => s.message);
  };
  await expect
    .poll(() => mine().filter((m) => m.type === "heartbeat").length, { timeout: 15_000 })
    .toBeGreaterThanOrEqual(heartbeats);
  return mine();
}

describe("the API key", () => {
  it("serves consumers through the recording proxy", async () => {
    const client = new OpenAI({ baseURL: `${relayUrl}/v1`, apiKey: ALICE_KEY, maxRetries: 0 });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("one two");
    const wrong = new OpenAI({ baseURL: `${relayUrl}/v1`, apiKey: WRONG_KEY, maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401 });
    const bob = new OpenAI({ baseURL: `${relayUrl}/v1`, apiKey: BOB_KEY, maxRetries: 0 });
    expect((await bob.models.list()).data).toEqual([]);
    // Nothing sent an Authorization header on to the engine either.
    expect(engine.requests.every((r) => r.headers.authorization === undefined)).toBe(true);
  });

  it("is in no control message the relay received or sent", async () => {
    for (const name of ["rig-file", "rig-env"]) {
      const messages = await sentBy(name, 3);
      expect(messages[0]?.type).toBe("hello");
      expect(new Set(messages.map((m) => m.type))).toEqual(new Set(["hello", "heartbeat"]));
    }
    expect(proxy.recorded.filter((r) => r.text.includes('"welcome"')).length).toBe(2);
    for (const r of proxy.recorded) expect(r.text).not.toContain(ALICE_KEY);
  });

  for (const how of ["--api-key-file", "CLUB_API_KEY"]) {
    it(`given through ${how}, is neither printed at debug nor on the command line`, () => {
      const { daemon } = daemons.find((d) => d.how === how)!;
      const output = daemon.output();
      // At debug indeed: pino's level 20 lines are there.
      expect(output).toMatch(/"level":20/);
      expect(output).not.toContain(ALICE_KEY);
      const cmdline = readFileSync(`/proc/${daemon.child.pid}/cmdline`, "utf8");
      expect(cmdline).toContain("start");
      expect(cmdline).not.toContain(ALICE_KEY);
    });
  }

  it("of no consumer appears in the relay's debug log", () => {
    const output = relay.output();
    expect(output).toMatch(/provider rig-env connected/);
    for (const key of [ALICE_KEY, BOB_KEY, WRONG_KEY]) expect(output).not.toContain(key);
  });
});
