/**
 * Sharing at the relay, in process with the official `openai` client: alice's rig shares one
 * model with the club, one with carol only, and keeps one private. Who sees what in
 * `/v1/models`, who may call what (the key decides the member), own rigs first, and the member
 * the relay names to the rig on every request.
 */
import OpenAI, { NotFoundError, type APIError } from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";
import { call, waitJob, type JobView } from "./jobs/helpers.ts";
import { MediaRig } from "./jobs/media-rig.ts";

const ALICE = "sk-alice-share-0123456789";
const BOB = "sk-bob-share-0123456789";
const CAROL = "sk-carol-share-0123456789";

let relay: Relay;
let alices: MediaRig;
let bobs: MediaRig | undefined;

const client = (apiKey: string) =>
  new OpenAI({ baseURL: `${relay.url}/v1`, apiKey, maxRetries: 0 });
const chat = (apiKey: string, model: string) =>
  client(apiKey).chat.completions.create({ model, messages: [{ role: "user", content: "hi" }] });

beforeAll(async () => {
  relay = await createRelay({
    port: 0,
    keys: new KeyRing({ [ALICE]: "alice", [BOB]: "bob", [CAROL]: "carol" }),
    log: silentLogger,
    heartbeatMs: 1000,
  });
  alices = new MediaRig({
    relayUrl: relay.url,
    apiKey: ALICE,
    name: "alice-rig",
    models: { llm: ["shared-chat", "carol-chat", "private-chat"] },
    access: { "shared-chat": "club", "carol-chat": ["carol"] },
    reply: () => "from alice's rig",
  });
  await alices.start();
});

afterAll(async () => {
  alices.stop();
  bobs?.stop();
  await relay.close();
});

const ids = async (key: string) =>
  (await client(key).models.list()).data.map((m) => [m.id, m.owned_by]);

describe("a rig's sharing at the relay", () => {
  it("shows each member their own models and what was shared with them", async () => {
    expect(await ids(ALICE)).toEqual([
      ["carol-chat", "alice-rig"],
      ["private-chat", "alice-rig"],
      ["shared-chat", "alice-rig"],
    ]);
    expect(await ids(BOB)).toEqual([["shared-chat", "alice-rig"]]);
    expect(await ids(CAROL)).toEqual([
      ["carol-chat", "alice-rig"],
      ["shared-chat", "alice-rig"],
    ]);
  });

  it("routes a member to a model shared with them, naming the member to the rig", async () => {
    const reply = await chat(BOB, "shared-chat");
    expect(reply.choices[0]?.message.content).toBe("from alice's rig");
    expect(alices.requests.at(-1)).toMatchObject({ model: "shared-chat", member: "bob" });
    await chat(CAROL, "carol-chat");
    expect(alices.requests.at(-1)).toMatchObject({ model: "carol-chat", member: "carol" });
  });

  it("answers 404 no_provider for a private model or one shared with others", async () => {
    const before = alices.requests.length;
    for (const [key, model] of [
      [BOB, "private-chat"],
      [BOB, "carol-chat"],
      [CAROL, "private-chat"],
    ] as const) {
      const err = (await chat(key, model).catch((e: unknown) => e)) as APIError;
      expect(err).toBeInstanceOf(NotFoundError);
      expect(err.type).toBe("no_provider");
    }
    expect(
      (
        await fetch(`${relay.url}/v1/models/private-chat`, {
          headers: { authorization: `Bearer ${BOB}` },
        })
      ).status,
    ).toBe(404);
    expect(alices.requests.length).toBe(before);
  });

  it("runs a member's async job on a model shared with them", async () => {
    const shared = await call<JobView>(
      relay,
      "POST",
      "/v1/chat/completions",
      { model: "shared-chat", messages: [{ role: "user", content: "job" }], async: true },
      {},
      BOB,
    );
    expect(shared.status).toBe(202);
    await waitJob(relay, shared.body.id, "PROCESSED", BOB);
    expect(alices.requests.at(-1)).toMatchObject({ model: "shared-chat", member: "bob" });
  });

  it("sends a member to their own rig before a shared one", async () => {
    bobs = new MediaRig({
      relayUrl: relay.url,
      apiKey: BOB,
      name: "bob-rig",
      models: { llm: ["shared-chat"] },
      reply: () => "from bob's rig",
    });
    await bobs.start();
    for (let i = 0; i < 3; i++)
      expect((await chat(BOB, "shared-chat")).choices[0]?.message.content).toBe("from bob's rig");
    // Bob's rig shares nothing: carol still goes to alice's.
    expect((await chat(CAROL, "shared-chat")).choices[0]?.message.content).toBe("from alice's rig");
    expect(await ids(CAROL)).toEqual([
      ["carol-chat", "alice-rig"],
      ["shared-chat", "alice-rig"],
    ]);
  });

  it("never routes to a paused rig, and shows it to its owner as paused", async () => {
    bobs?.stop();
    const owned = async (key: string) => {
      const res = await fetch(`${relay.url}/v1/providers`, {
        headers: { authorization: `Bearer ${key}` },
      });
      return (await res.json()) as {
        data: {
          name: string;
          paused: string | null;
          models: { id: string; access: unknown; paused: string | null }[];
        }[];
      };
    };
    alices.setPaused("paused by its owner");
    await expect.poll(async () => (await ids(BOB)).length).toBe(0);
    expect(await ids(ALICE)).toEqual([]);
    const err = (await chat(BOB, "shared-chat").catch((e: unknown) => e)) as APIError;
    expect(err.status).toBe(404);
    const mine = await owned(ALICE);
    expect(mine.data).toHaveLength(1);
    expect(mine.data[0]).toMatchObject({ name: "alice-rig", paused: "paused by its owner" });
    expect(mine.data[0]?.models.map((m) => [m.id, m.access])).toEqual([
      ["shared-chat", "club"],
      ["carol-chat", ["carol"]],
      ["private-chat", "private"],
    ]);
    expect((await owned(BOB)).data).toEqual([]);

    // One model paused alone (its GPU is busy with the owner's game): the rest serve.
    alices.setPaused(undefined, { "shared-chat": "GPU 0 is in use by another program" });
    await expect
      .poll(async () => (await ids(ALICE)).map(([id]) => id))
      .toEqual(["carol-chat", "private-chat"]);
    expect(await ids(BOB)).toEqual([]);
    expect((await owned(ALICE)).data[0]?.models[0]).toMatchObject({
      id: "shared-chat",
      paused: "GPU 0 is in use by another program",
    });
    alices.setPaused(undefined);
    await expect.poll(async () => (await ids(BOB)).length).toBe(1);
  });
});
