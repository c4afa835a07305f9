/**
 * Two relay instances sharing one PostgreSQL database, in process, with the official `openai`
 * client: a provider's tunnel on instance A serves a consumer of instance B through the internal
 * HTTP/2 link; changes reach B by LISTEN/NOTIFY; an abort at B resets the stream at the rig; a
 * dead instance's providers expire; the internal listener wants the cluster secret.
 */
import http2 from "node:http2";
import { once } from "node:events";
import { connect } from "node:net";
import OpenAI, { APIUserAbortError } from "openai";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { KeyRing } from "../../src/relay/keys.ts";
import type { Relay } from "../../src/relay/server.ts";
import { MediaRig } from "../relay/jobs/media-rig.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";
import { clusterInstance } from "./instance.ts";

const ALICE = "sk-alice-cluster-0123456789";
const BOB = "sk-bob-cluster-0123456789";

let url: string;
let a: Relay;
let b: Relay;
let rig: MediaRig;

const instance = (name: string) =>
  clusterInstance(name, url, new KeyRing({ [ALICE]: "alice", [BOB]: "bob" }));

const client = (relay: Relay, apiKey = ALICE) =>
  new OpenAI({ baseURL: `${relay.url}/v1`, apiKey, maxRetries: 0 });

const remoteIds = (relay: Relay) => relay.registry.remote().map((p) => p.name);

describe.skipIf(!HAVE_PG)("two relay instances on one database", () => {
  beforeAll(async () => {
    url = await freshDatabase("cluster");
    [a, b] = await Promise.all([instance("inst-a"), instance("inst-b")]);
    rig = new MediaRig({
      relayUrl: a.url,
      apiKey: ALICE,
      name: "rig-on-a",
      models: { llm: ["chat-a"] },
      access: { "chat-a": "club" },
      reply: () => "hello from the rig on a",
    });
    await rig.start();
    await vi.waitFor(() => expect(remoteIds(b)).toEqual(["rig-on-a"]));
  });

  afterAll(async () => {
    rig.stop();
    await Promise.all([a.close(), b.close()]);
  });

  it("lists and serves a provider whose tunnel the other instance holds", async () => {
    const models = await client(b).models.list();
    expect(models.data.map((m) => [m.id, m.owned_by])).toEqual([["chat-a", "rig-on-a"]]);
    const reply = await client(b, BOB).chat.completions.create({
      model: "chat-a",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(reply.choices[0]?.message.content).toBe("hello from the rig on a");
    expect(rig.requests.at(-1)).toMatchObject({ model: "chat-a", member: "bob" });
    const own = await fetch(`${b.url}/v1/providers`, {
      headers: { authorization: `Bearer ${ALICE}` },
    });
    expect(((await own.json()) as { data: { name: string }[] }).data.map((p) => p.name)).toEqual([
      "rig-on-a",
    ]);
  });

  it("streams across instances, whole", async () => {
    const stream = await client(b).chat.completions.create({
      model: "chat-a",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("hello from the rig on a");
  });

  it("resets the stream at the rig when the consumer at the other instance leaves", async () => {
    rig.pause();
    const abort = new AbortController();
    const asked = once(rig, "request");
    const call = client(b)
      .chat.completions.create(
        { model: "chat-a", messages: [{ role: "user", content: "wait" }], stream: true },
        { signal: abort.signal },
      )
      .catch((err: unknown) => err);
    await asked;
    const closed = once(rig, "client-closed");
    abort.abort();
    expect(await call).toBeInstanceOf(APIUserAbortError);
    await closed;
    rig.resume();
    await vi.waitFor(() => expect(rig.inFlight).toBe(0));
  });

  it("resets an upload at the rig when its consumer at the other instance hangs up mid-body", async () => {
    const stt = new MediaRig({
      relayUrl: a.url,
      apiKey: ALICE,
      name: "stt-on-a",
      models: { stt: ["stt-a"] },
      access: { "stt-a": "club" },
    });
    await stt.start();
    try {
      await vi.waitFor(() => expect(remoteIds(b)).toContain("stt-on-a"));
      const form =
        '--x\r\ncontent-disposition: form-data; name="model"\r\n\r\nstt-a\r\n' +
        '--x\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\n\r\n';
      const socket = connect(Number(new URL(b.url).port), "127.0.0.1");
      socket.on("error", () => undefined);
      socket.write(
        `POST /v1/audio/transcriptions HTTP/1.1\r\nhost: b\r\nauthorization: Bearer ${BOB}\r\n` +
          "content-type: multipart/form-data; boundary=x\r\ncontent-length: 10000000\r\n\r\n" +
          form,
      );
      socket.write(Buffer.alloc(50_000));
      await once(stt, "upload");
      const cut = once(stt, "upload-cut");
      socket.destroy();
      // Through B's stream to A and A's to the rig: before, B's reset never left (a pipeline on
      // its stream to A), and the rig waited on the rest of the body for good.
      await cut;
    } finally {
      stt.stop();
    }
  });

  it("follows a pause within the cluster: the other instance stops routing to it", async () => {
    rig.setPaused("owner is gaming");
    await vi.waitFor(async () =>
      expect((await client(b).models.list()).data.map((m) => m.id)).toEqual([]),
    );
    rig.setPaused(undefined);
    await vi.waitFor(async () =>
      expect((await client(b).models.list()).data.map((m) => m.id)).toEqual(["chat-a"]),
    );
  });

  it("refuses internal streams without the cluster secret", async () => {
    const internal = a.cluster?.internalUrl;
    expect(internal).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const conn = a.registry.all()[0]!.id;
    const before = rig.requests.length;
    const session = http2.connect(internal!);
    try {
      for (const secret of [undefined, "wrong-secret-0123456789", ALICE]) {
        const req = session.request({
          ":method": "POST",
          ":path": "/v1/chat/completions",
          "x-club-connection": conn,
          ...(secret ? { "x-club-cluster-secret": secret } : {}),
        });
        req.end("{}");
        const [headers] = (await once(req, "response")) as [http2.IncomingHttpHeaders];
        let body = "";
        for await (const chunk of req) body += String(chunk);
        expect(headers[":status"]).toBe(401);
        expect(JSON.parse(body)).toMatchObject({ error: { type: "authentication_error" } });
      }
    } finally {
      session.close();
    }
    expect(rig.requests.length).toBe(before);
  });

  it("drops a dead instance's providers once its heartbeat is older than the expiry", async () => {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const { rows } = await db.query<{ manifest: unknown }>(
        "SELECT manifest FROM cluster_providers LIMIT 1",
      );
      await db.query(
        "INSERT INTO cluster_instances (id, url, seen_at) VALUES ('inst-dead', 'http://127.0.0.1:9', now())",
      );
      await db.query(
        `INSERT INTO cluster_providers (conn_id, instance_id, member, name, version, connected_at, manifest)
         VALUES ('conn_dead', 'inst-dead', 'alice', 'rig-on-dead', 'test', 0, $1)`,
        [JSON.stringify(rows[0]!.manifest)],
      );
      await db.query("SELECT pg_notify('club_registry', 'inst-dead conn_dead')");
      await vi.waitFor(() => expect(remoteIds(b).sort()).toEqual(["rig-on-a", "rig-on-dead"]));
      // It stops beating: its row ages past the expiry and a live instance deletes it.
      await db.query(
        "UPDATE cluster_instances SET seen_at = now() - interval '1 hour' WHERE id = 'inst-dead'",
      );
      await vi.waitFor(() => expect(remoteIds(b)).toEqual(["rig-on-a"]));
      const left = await db.query("SELECT 1 FROM cluster_providers WHERE conn_id = 'conn_dead'");
      expect(left.rowCount).toBe(0);
    } finally {
      await db.end();
    }
  });

  it("forgets a provider that disconnects, and one whose instance left", async () => {
    rig.stop();
    await vi.waitFor(() => expect(remoteIds(b)).toEqual([]));
    rig = new MediaRig({ ...rig.options, name: "rig-again" });
    await rig.start();
    await vi.waitFor(() => expect(remoteIds(b)).toEqual(["rig-again"]));
    await a.close();
    await vi.waitFor(() => expect(remoteIds(b)).toEqual([]));
    const err = await client(b)
      .chat.completions.create({ model: "chat-a", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 404, type: "no_provider" });
  });
});
