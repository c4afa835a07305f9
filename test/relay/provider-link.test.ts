/**
 * The relay's end of the tunnel protocol (docs/protocol.md), driven by a hand-written provider:
 * a raw WebSocket that says exactly what each test needs.
 */
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { silentLogger } from "../../src/log.ts";
import { CONNECT_PATH, TUNNEL_SUBPROTOCOL, type Manifest } from "../../src/protocol/index.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";

const KEY = "sk-provider-test-1234";
let relay: Relay;

beforeAll(async () => {
  relay = await createRelay({
    port: 0,
    keys: new KeyRing({ [KEY]: "alice" }),
    log: silentLogger,
    heartbeatMs: 200,
    helloTimeoutMs: 300,
  });
});

afterAll(async () => {
  await relay.close();
});

function manifest(...models: string[]): Manifest {
  return {
    schema_version: 1,
    agent: { name: "rig" },
    hosts: [
      {
        id: "h",
        gpus: [],
        services: [
          {
            name: "svc",
            engine: "llamacpp",
            type: "llm",
            features: ["streaming"],
            max_concurrent: 1,
            models: models.map((id) => ({
              id,
              input_modalities: ["text"],
              output_modalities: ["text"],
              features: [],
              context_length: 1024,
            })),
          },
        ],
      },
    ],
  };
}

function connect(
  options: { key?: string; protocol?: string; path?: string; autoPong?: boolean } = {},
): WebSocket {
  return new WebSocket(
    `${relay.url.replace("http", "ws")}${options.path ?? CONNECT_PATH}`,
    options.protocol ?? TUNNEL_SUBPROTOCOL,
    {
      headers: { authorization: `Bearer ${options.key ?? KEY}` },
      perMessageDeflate: false,
      autoPong: options.autoPong ?? true,
    },
  );
}

async function refusedWith(ws: WebSocket): Promise<number> {
  ws.on("error", () => undefined); // terminate() before open reports an error we expect
  const [, res] = (await once(ws, "unexpected-response")) as [
    unknown,
    { statusCode: number; resume(): void },
  ];
  res.resume();
  ws.terminate();
  return res.statusCode;
}

function nextText(ws: WebSocket): Promise<Record<string, unknown>> {
  return new Promise((resolve) => {
    const onMessage = (data: Buffer, isBinary: boolean): void => {
      if (isBinary) return;
      ws.off("message", onMessage);
      resolve(JSON.parse(data.toString()) as Record<string, unknown>);
    };
    ws.on("message", onMessage);
  });
}

async function models(): Promise<string[]> {
  const res = await fetch(`${relay.url}/v1/models`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  return ((await res.json()) as { data: { id: string }[] }).data.map((m) => m.id);
}

async function hello(
  ws: WebSocket,
  m = manifest("m1"),
  extra: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  await once(ws, "open");
  const reply = nextText(ws);
  ws.send(
    JSON.stringify({
      type: "hello",
      v: 1,
      provider: { name: "rig", version: "test" },
      manifest: m,
      ...extra,
    }),
  );
  return reply;
}

/** A chat for `model` finds no provider to route to: 404 `no_provider`. */
async function expectNoProvider(model: string): Promise<void> {
  const res = await fetch(`${relay.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ model, messages: [] }),
  });
  expect(res.status).toBe(404);
  expect(await res.json()).toMatchObject({ error: { type: "no_provider" } });
}

async function providers(): Promise<{ name: string; paused: string | null }[]> {
  const res = await fetch(`${relay.url}/v1/providers`, {
    headers: { authorization: `Bearer ${KEY}` },
  });
  return ((await res.json()) as { data: { name: string; paused: string | null }[] }).data;
}

describe("relay: the provider handshake", () => {
  it("refuses a wrong key with 401, a wrong path with 404 and another protocol with 426", async () => {
    expect(await refusedWith(connect({ key: "sk-wrong-key-000000" }))).toBe(401);
    expect(await refusedWith(connect({ path: "/v1/elsewhere" }))).toBe(404);
    expect(await refusedWith(connect({ protocol: "club-tunnel.2" }))).toBe(426);
  });

  it("welcomes a provider and lists its models", async () => {
    const ws = connect();
    const welcome = await hello(ws);
    expect(welcome).toMatchObject({ type: "welcome", v: 1, member: "alice", heartbeat_ms: 200 });
    expect(welcome.connection_id).toMatch(/^conn_[0-9a-f]{12}$/);
    expect(await models()).toEqual(["m1"]);
    ws.close();
    await once(ws, "close");
  });

  it("takes the pause from the hello: a rig that starts paused is never listed or routed", async () => {
    // This provider never sends a heartbeat: only the hello can have told the relay.
    const ws = connect();
    await hello(ws, manifest("asleep"), { paused: "paused by its owner" });
    expect(await models()).not.toContain("asleep");
    expect(await providers()).toContainEqual(
      expect.objectContaining({ name: "rig", paused: "paused by its owner" }),
    );
    await expectNoProvider("asleep");
    ws.close();
    await once(ws, "close");

    const one = connect();
    await hello(one, manifest("busy", "free"), { paused_models: { busy: "the GPU is in use" } });
    expect(await models()).toEqual(expect.arrayContaining(["free"]));
    expect(await models()).not.toContain("busy");
    one.close();
    await once(one, "close");
  });

  it("refuses a hello whose pause is malformed, naming the field", async () => {
    const ws = connect();
    const reply = await hello(ws, manifest("m1"), { paused: "" });
    expect(reply).toMatchObject({ type: "error", code: "bad_message", fatal: true });
    expect(String(reply.message)).toContain("hello.paused");
    const [code] = (await once(ws, "close")) as [number];
    expect(code).toBe(4400);
  });

  it("closes a connection that never says hello with 4400", async () => {
    const ws = connect();
    const [code] = (await once(ws, "close")) as [number];
    expect(code).toBe(4400);
  });

  it("rejects a malformed hello with an error that names the field, then 4400", async () => {
    const ws = connect();
    await once(ws, "open");
    const reply = nextText(ws);
    ws.send(
      JSON.stringify({
        type: "hello",
        v: 1,
        provider: { name: "rig" },
        manifest: { schema_version: 1, agent: {}, hosts: [] },
      }),
    );
    expect(await reply).toMatchObject({
      type: "error",
      code: "bad_message",
      fatal: true,
      message: expect.stringContaining("agent.name"),
    });
    const [code] = (await once(ws, "close")) as [number];
    expect(code).toBe(4400);
  });

  it("answers junk after hello with an error and keeps the connection", async () => {
    const ws = connect();
    await hello(ws);
    const reply = nextText(ws);
    ws.send("{not json");
    expect(await reply).toMatchObject({ type: "error", fatal: false });
    const reply2 = nextText(ws);
    ws.send(JSON.stringify({ type: "teleport", v: 1 }));
    expect(await reply2).toMatchObject({ message: expect.stringContaining("teleport") });
    expect(ws.readyState).toBe(WebSocket.OPEN);
    ws.close();
    await once(ws, "close");
  });
});

describe("relay: a connected provider", () => {
  it("takes a changed manifest from a heartbeat", async () => {
    const ws = connect();
    await hello(ws, manifest("a"));
    expect(await models()).toEqual(["a"]);
    ws.send(
      JSON.stringify({
        type: "heartbeat",
        v: 1,
        seq: 1,
        in_flight: 0,
        queued: 0,
        services: {},
        gpus: [],
        manifest: manifest("a", "b"),
      }),
    );
    await expect.poll(models).toEqual(["a", "b"]);
    ws.close();
    await once(ws, "close");
  });

  it("stops routing to a draining provider", async () => {
    const ws = connect();
    await hello(ws, manifest("drainme"));
    expect(await models()).toContain("drainme");
    ws.send(JSON.stringify({ type: "drain", v: 1 }));
    await expect.poll(models).not.toContain("drainme");
    await expectNoProvider("drainme");
    ws.close();
    await once(ws, "close");
  });

  it("drops a provider silent for two heartbeat intervals", async () => {
    const ws = connect({ autoPong: false });
    await hello(ws, manifest("silent"));
    expect(await models()).toContain("silent");
    await once(ws, "close");
    expect(await models()).not.toContain("silent");
  });
});
