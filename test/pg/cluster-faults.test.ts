/**
 * Faults under two relay instances, on a PostgreSQL cluster of this file's own (so stopping it
 * touches no other test): a rig on the other instance answering 429 is failed over to the next
 * provider; a partition between the instances (the internal listener stopped, through a TCP
 * relay this test cuts) gives a prompt error in the envelope, or the next provider when there is
 * one, and heals; PostgreSQL stopped and started again while idle: tunnels stay up, requests are
 * served across instances meanwhile, and changes propagate again once it is back.
 */
import { once } from "node:events";
import net from "node:net";
import OpenAI, { InternalServerError } from "openai";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { KeyRing } from "../../src/relay/keys.ts";
import type { Relay } from "../../src/relay/server.ts";
import { MediaRig } from "../relay/jobs/media-rig.ts";
import { findPostgresBin, freePort, startCluster, type Cluster } from "./cluster.ts";
import { HAVE_PG } from "./db.ts";
import { clusterInstance } from "./instance.ts";

const ALICE = "sk-alice-faults-0123456789";
const BOB = "sk-bob-faults-0123456789";

/** A TCP relay in front of an instance's internal listener: `cut()` stops it, `heal()` again. */
class Link {
  readonly #sockets = new Set<net.Socket>();
  #server: net.Server | undefined;
  target = 0;
  port = 0;

  async listen(): Promise<void> {
    const server = net.createServer((inbound) => {
      const outbound = net.connect(this.target, "127.0.0.1");
      for (const s of [inbound, outbound]) {
        this.#sockets.add(s);
        s.on("close", () => this.#sockets.delete(s));
        s.on("error", () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound).pipe(inbound);
    });
    this.#server = server;
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    const address = server.address();
    this.port = typeof address === "object" && address ? address.port : 0;
  }

  /** Stops listening and drops every connection: what a stopped internal listener looks like. */
  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  }

  heal(): Promise<void> {
    return this.listen();
  }
}

const bin = findPostgresBin();

describe.skipIf(!HAVE_PG || !bin)("two relay instances under faults", () => {
  let db: Cluster;
  let a: Relay;
  let b: Relay;
  const toA = new Link();
  const rigs: MediaRig[] = [];

  const instance = (name: string, internalPort = 0, instanceUrl?: string) =>
    clusterInstance(name, db.url, new KeyRing({ [ALICE]: "alice", [BOB]: "bob" }), {
      cluster: {
        internalPort,
        ...(instanceUrl ? { instanceUrl } : {}),
        heartbeatMs: 200,
        expiryMs: 5000,
      },
    });

  const rig = async (relay: Relay, name: string, models: string[]) => {
    const r = new MediaRig({
      relayUrl: relay.url,
      apiKey: ALICE,
      name,
      models: { llm: models },
      access: Object.fromEntries(models.map((m) => [m, "club" as const])),
      reply: () => `hello from ${name}`,
    });
    rigs.push(r);
    await r.start();
    return r;
  };

  const client = (relay: Relay) =>
    new OpenAI({ baseURL: `${relay.url}/v1`, apiKey: BOB, maxRetries: 0 });

  const ask = async (relay: Relay, model: string) =>
    (
      await client(relay).chat.completions.create({
        model,
        messages: [{ role: "user", content: "hi" }],
      })
    ).choices[0]?.message.content;

  const remote = (relay: Relay) =>
    relay.registry
      .remote()
      .map((p) => p.name)
      .sort();

  beforeAll(async () => {
    db = await startCluster(bin!);
    // B reaches A's internal listener only through `toA`, so the test can cut it.
    await toA.listen();
    toA.target = await freePort();
    a = await instance("fault-a", toA.target, `http://127.0.0.1:${toA.port}`);
    b = await instance("fault-b");
  });

  afterAll(async () => {
    for (const r of rigs) r.stop();
    await Promise.all([a.close(), b.close()]);
    await toA.cut();
    db.stop();
  });

  it("fails over from a full rig on the other instance to the next provider", async () => {
    const full = await rig(a, "full-on-a", ["shared"]);
    const free = await rig(a, "free-on-a", ["shared"]);
    await vi.waitFor(() => expect(remote(b)).toEqual(["free-on-a", "full-on-a"]));
    full.refuseWith = 429;
    // Providers are picked by load, then at random: ask until the full one was tried.
    await vi.waitFor(
      async () => {
        expect(await ask(b, "shared")).toBe("hello from free-on-a");
        expect(full.requests.length).toBeGreaterThan(0);
      },
      { timeout: 20_000, interval: 0 },
    );
    full.refuseWith = undefined;
    full.stop();
    free.stop();
    await vi.waitFor(() => expect(remote(b)).toEqual([]));
  });

  it("answers promptly across a partition, fails over to a provider it can reach, and heals", async () => {
    const onA = await rig(a, "only-on-a", ["far", "both"]);
    const onB = await rig(b, "on-b", ["both"]);
    await vi.waitFor(() => expect(remote(b)).toEqual(["only-on-a"]));
    expect(await ask(b, "far")).toBe("hello from only-on-a");

    await toA.cut();
    // Nothing else serves `far`: the envelope says which provider could not be reached.
    const err = await client(b)
      .chat.completions.create({ model: "far", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalServerError);
    expect((err as InternalServerError).status).toBe(502);
    expect((err as InternalServerError).error).toMatchObject({ type: "upstream_error" });
    expect((err as InternalServerError).message).toMatch(/only-on-a/);
    // `both` is also on B's own rig. With a request held there, the rig on A (less loaded) is
    // picked first; it cannot be reached, so the request goes on to B's rig.
    onB.pause();
    const asked = once(onB, "request");
    const held = ask(b, "both");
    await asked;
    const next = once(onB, "request");
    const crossing = ask(b, "both");
    await next;
    onB.resume();
    expect(await held).toBe("hello from on-b");
    expect(await crossing).toBe("hello from on-b");
    expect(onA.requests.filter((r) => r.model === "both")).toHaveLength(0);
    // A's own consumers are untouched by the partition.
    expect(await ask(a, "far")).toBe("hello from only-on-a");

    await toA.heal();
    await vi.waitFor(async () => expect(await ask(b, "far")).toBe("hello from only-on-a"));
    onA.stop();
    onB.stop();
    await vi.waitFor(() => expect(remote(b)).toEqual([]));
  });

  it("keeps tunnels and cross-instance routing while PostgreSQL is down, and resyncs after", async () => {
    const onA = await rig(a, "steady-on-a", ["steady"]);
    await vi.waitFor(() => expect(remote(b)).toEqual(["steady-on-a"]));

    db.halt();
    // The mirror and the internal link need no database: B still reaches the rig on A.
    expect(await ask(b, "steady")).toBe("hello from steady-on-a");
    expect(a.registry.all().map((l) => l.name)).toEqual(["steady-on-a"]);
    // A rig that connects to B meanwhile is served by B at once...
    const late = await rig(b, "late-on-b", ["late"]);
    expect(await ask(b, "late")).toBe("hello from late-on-b");
    // Work that must be stored first is refused at once, saying why; the tunnels stay up.
    for (const relay of [a, b]) {
      const job = await fetch(`${relay.url}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${BOB}`, "content-type": "application/json" },
        body: JSON.stringify({
          model: "steady",
          messages: [{ role: "user", content: "hi" }],
          async: true,
        }),
      });
      expect(job.status).toBe(503);
      const refusal = (await job.json()) as { error: { message: string; code?: string } };
      expect(refusal.error.code).toBe("database_unavailable");
      expect(refusal.error.message).toContain("database is unavailable");
      const list = await fetch(`${relay.url}/v1/jobs`, {
        headers: { authorization: `Bearer ${BOB}` },
      });
      expect(list.status).toBe(503);
    }
    expect(await ask(b, "steady")).toBe("hello from steady-on-a");

    db.resume();
    // ...and reaches A once the database is back (written again, announced, mirrored).
    await vi.waitFor(() => expect(remote(a)).toEqual(["late-on-b"]), { timeout: 30_000 });
    expect(await ask(a, "late")).toBe("hello from late-on-b");
    // A change after the restart propagates: B's listener reconnected.
    onA.setPaused("owner is gaming");
    await vi.waitFor(
      async () => expect((await client(b).models.list()).data.map((m) => m.id)).toEqual(["late"]),
      { timeout: 30_000 },
    );
    late.stop();
    onA.stop();
  });
});
