/**
 * What each member used, in process with the official `openai` client: alice's rig shares a
 * chat model and an image model with the club; bob and carol use them, streamed and not, sync
 * and async. The relay's counts match what the engine reported; a consumer who did not ask for
 * streamed usage gets exactly the chunks it would have got without the relay asking; alice sees
 * bob's use of her rig under "served", carol sees nothing of bob's; counts survive a restart.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { call, waitJob, type JobView } from "./jobs/helpers.ts";
import { MediaRig } from "./jobs/media-rig.ts";

const ALICE = "sk-alice-usage-0123456789";
const BOB = "sk-bob-usage-0123456789";
const CAROL = "sk-carol-usage-0123456789";
const REPLY = "three words here";
/** What the fake engine says it used: the prompt's characters, the reply's words. */
const used = (body: Record<string, unknown>) => ({
  prompt_tokens: JSON.stringify(body.messages).length,
  completion_tokens: REPLY.split(" ").length + (typeof body.extra === "number" ? body.extra : 0),
});

const dataDir = mkdtempSync(join(tmpdir(), "club-usage-"));
let relay: Relay;
let rig: MediaRig;

const start = (port = 0): Promise<Relay> =>
  createRelay({
    port,
    keys: new KeyRing({ [ALICE]: "alice", [BOB]: "bob", [CAROL]: "carol" }),
    log: silentLogger,
    heartbeatMs: 1000,
    dataDir,
    jobLimits: { tickMs: 20 },
  });
const client = (apiKey: string) =>
  new OpenAI({ baseURL: `${relay.url}/v1`, apiKey, maxRetries: 0 });
const messages = (text: string) => [{ role: "user" as const, content: text }];

interface Row {
  day: string;
  model: string;
  provider: string;
  member?: string;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  audio_seconds: number;
  images: number;
  videos: number;
  bytes_out: number;
}
interface Report {
  object: string;
  member: string;
  used: Row[];
  served: Row[];
}
const usage = async (key: string, query = ""): Promise<Report> => {
  const res = await call<Report>(relay, "GET", `/v1/usage${query}`, undefined, {}, key);
  expect(res.status).toBe(200);
  return res.body;
};
const today = new Date().toISOString().slice(0, 10);
const zero = {
  day: today,
  provider: "alice-rig",
  requests: 0,
  errors: 0,
  prompt_tokens: 0,
  completion_tokens: 0,
  audio_seconds: 0,
  images: 0,
  videos: 0,
  bytes_out: 0,
};

/** What bob's calls added up to, as the engine reported them. */
const bob = { ...zero, model: "shared-chat" };

/**
 * Bob's chat row once his last request is booked: the client stops reading at `[DONE]`, which
 * may reach it before the relay has seen the end of the provider's answer.
 */
async function settled(): Promise<Row | undefined> {
  await expect.poll(async () => (await usage(BOB)).used[0]?.requests).toBe(bob.requests);
  return (await usage(BOB)).used[0];
}

beforeAll(async () => {
  relay = await start();
  rig = new MediaRig({
    relayUrl: relay.url,
    apiKey: ALICE,
    name: "alice-rig",
    models: { llm: ["shared-chat"], image: ["shared-image"] },
    access: { "shared-chat": "club", "shared-image": "club" },
    reply: () => REPLY,
    usage: used,
  });
  await rig.start();
});

afterAll(async () => {
  rig.stop();
  await relay.close();
});

describe("usage per member, rig and model", () => {
  it("counts a plain answer's usage as the engine reported it", async () => {
    const reply = await client(BOB).chat.completions.create({
      model: "shared-chat",
      messages: messages("hello"),
    });
    const reported = used({ messages: messages("hello") });
    expect(reply.usage).toMatchObject(reported);
    bob.requests++;
    bob.prompt_tokens += reported.prompt_tokens;
    bob.completion_tokens += reported.completion_tokens;
    const raw = await fetch(`${relay.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${BOB}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "shared-chat", messages: messages("raw"), extra: 2 }),
    });
    const bytes = (await raw.arrayBuffer()).byteLength;
    const second = used({ messages: messages("raw"), extra: 2 });
    bob.requests++;
    bob.prompt_tokens += second.prompt_tokens;
    bob.completion_tokens += second.completion_tokens;
    const { used: rows } = await usage(BOB);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.bytes_out).toBeGreaterThan(bytes);
    bob.bytes_out = rows[0]?.bytes_out ?? 0;
    expect(rows[0]).toEqual(bob);
  });

  it("asks a stream's usage for itself and takes the extra chunk out of the answer", async () => {
    const before = rig.requests.length;
    const stream = await client(BOB).chat.completions.create({
      model: "shared-chat",
      messages: messages("stream me"),
      stream: true,
    });
    const chunks: unknown[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    // The engine was asked, and answered with a usage chunk; the consumer did not ask.
    expect(rig.requests[before]?.body.stream_options).toEqual({ include_usage: true });
    const base = { id: "chatcmpl-rig", object: "chat.completion.chunk", created: 1 };
    const delta = (d: unknown, finish: string | null = null) => ({
      choices: [{ index: 0, finish_reason: finish, delta: d }],
      ...base,
      model: "shared-chat",
    });
    expect(chunks).toEqual([
      delta({ role: "assistant", content: null }),
      delta({ content: "three" }),
      delta({ content: " words" }),
      delta({ content: " here" }),
      delta({}, "stop"),
    ]);
    const reported = used({ messages: messages("stream me") });
    bob.requests++;
    bob.prompt_tokens += reported.prompt_tokens;
    bob.completion_tokens += reported.completion_tokens;
    const row = await settled();
    expect(row).toMatchObject({ ...bob, bytes_out: row?.bytes_out });
    bob.bytes_out = row?.bytes_out ?? 0;
  });

  it("passes the usage chunk to a consumer who asked for it, and counts it", async () => {
    const stream = await client(BOB).chat.completions.create({
      model: "shared-chat",
      messages: messages("with usage"),
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    const reported = used({ messages: messages("with usage") });
    expect(chunks).toHaveLength(6);
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: reported });
    bob.requests++;
    bob.prompt_tokens += reported.prompt_tokens;
    bob.completion_tokens += reported.completion_tokens;
    const row = await settled();
    expect(row).toMatchObject({ ...bob, bytes_out: row?.bytes_out });
    bob.bytes_out = row?.bytes_out ?? 0;
  });

  it("counts errors, generated images and async jobs", async () => {
    const refused = await call(
      relay,
      "POST",
      "/v1/chat/completions",
      { model: "shared-chat", messages: messages("no"), fail_with: 400 },
      {},
      BOB,
    );
    expect(refused.status).toBe(400);
    const images = await client(BOB).images.generate({ model: "shared-image", prompt: "x", n: 3 });
    expect(images.data).toHaveLength(3);
    const submitted = await call<JobView>(
      relay,
      "POST",
      "/v1/chat/completions",
      { model: "shared-chat", messages: messages("later"), async: true },
      {},
      BOB,
    );
    expect(submitted.status).toBe(202);
    await waitJob(relay, submitted.body.id, "PROCESSED", BOB);
    const reported = used({ messages: messages("later") });
    bob.requests += 2;
    bob.errors++;
    bob.prompt_tokens += reported.prompt_tokens;
    bob.completion_tokens += reported.completion_tokens;
    const { used: rows } = await usage(BOB);
    expect(rows.map((r) => r.model)).toEqual(["shared-chat", "shared-image"]);
    expect(rows[0]).toMatchObject({ ...bob, bytes_out: rows[0]?.bytes_out });
    bob.bytes_out = rows[0]?.bytes_out ?? 0;
    expect(rows[1]).toMatchObject({ model: "shared-image", requests: 1, images: 3, errors: 0 });
  });

  it("shows the owner others' use of their rig, and no member anyone else's", async () => {
    await client(CAROL).chat.completions.create({ model: "shared-chat", messages: messages("c") });
    const alice = await usage(ALICE);
    expect(alice).toMatchObject({ object: "usage", member: "alice", used: [] });
    expect(alice.served.map((r) => [r.member, r.model, r.requests])).toEqual([
      ["bob", "shared-chat", bob.requests],
      ["carol", "shared-chat", 1],
      ["bob", "shared-image", 1],
    ]);
    expect(alice.served[0]).toEqual({ ...bob, member: "bob" });
    const carol = await usage(CAROL);
    expect(carol.served).toEqual([]);
    expect(carol.used.map((r) => [r.model, r.requests])).toEqual([["shared-chat", 1]]);
    expect(JSON.stringify(carol)).not.toContain("bob");
    expect((await usage(ALICE, "?model=shared-image")).served).toHaveLength(1);
    expect((await usage(BOB, "?days=1&model=shared-chat")).used).toEqual([bob]);
    expect((await usage(BOB, "?days=400&model=nothing")).used).toEqual([]);
  });

  it("answers bad parameters in the club's envelope", async () => {
    for (const query of ["?days=0", "?days=401", "?days=abc", "?days=1.5", "?model=", "?from=1"]) {
      const res = await call(relay, "GET", `/v1/usage${query}`, undefined, {}, BOB);
      expect(res.status, query).toBe(400);
      expect(res.body.error.type).toBe("invalid_request_error");
    }
    const res = await call(relay, "GET", "/v1/usage/alice", undefined, {}, BOB);
    expect(res.status).toBe(404);
    expect(res.body.error.type).toBe("not_found_error");
    const anonymous = await fetch(`${relay.url}/v1/usage`);
    expect(anonymous.status).toBe(401);
  });

  it("keeps the counts across a restart, the last ones written on close", async () => {
    const before = { alice: await usage(ALICE), bob: await usage(BOB) };
    expect(before.bob.used[0]).toEqual(bob);
    // Counted, not flushed yet (every 5 s by default): close writes it.
    await client(CAROL).chat.completions.create({ model: "shared-chat", messages: messages("c") });
    rig.stop();
    await relay.close();
    relay = await start(relay.port);
    expect(await usage(BOB)).toEqual(before.bob);
    const alice = await usage(ALICE);
    expect(alice.served.find((r) => r.member === "carol")?.requests).toBe(2);
    expect(alice.served.filter((r) => r.member === "bob")).toEqual(
      before.alice.served.filter((r) => r.member === "bob"),
    );
  });
});
