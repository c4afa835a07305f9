/**
 * Jobs, batches and workflow runs across two relay instances on one PostgreSQL: a job taken by
 * one instance runs on a rig whose tunnel the other holds, and is read, cancelled, retried and
 * fetched (its bytes too) from either; a workflow's gate is approved through the instance that
 * does not keep the run; an idempotency key and the member's room hold across instances; and an
 * instance killed with -9 mid-job leaves its work to the survivor, which runs it again with the
 * interrupted attempt counted.
 */
import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { KeyRing } from "../../src/relay/keys.ts";
import type { Relay } from "../../src/relay/server.ts";
import { scratchDir, writeSecret, type CliProcess } from "../e2e/harness.ts";
import {
  ALICE,
  BOB,
  FAST,
  call,
  waitJob,
  waitRun,
  type BatchView,
  type JobView,
  type ListView,
  type RunView,
} from "../relay/jobs/helpers.ts";
import { MUSIC, MediaRig, PNG } from "../relay/jobs/media-rig.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";
import { SECRET, clusterInstance, relayProcess } from "./instance.ts";

const keys = (): KeyRing => new KeyRing({ [ALICE]: "alice", [BOB]: "bob" });
const REPLY = { titles: ["Edge", "Cloud"], scenes: ["Dawn.", "Dusk."], prompts: ["p1"] };

let database: string;
let a: Relay;
let b: Relay;
let rig: MediaRig;
/** The workflow run the gate test started on A. */
let gated = "";

async function owner(id: string): Promise<string | null> {
  const client = new pg.Client({ connectionString: database });
  await client.connect();
  try {
    const { rows } = await client.query<{ owner: string | null }>(
      "SELECT owner FROM jobs WHERE id = $1 UNION ALL SELECT owner FROM runs WHERE id = $1",
      [id],
    );
    return rows[0]?.owner ?? null;
  } finally {
    await client.end();
  }
}

const music = (relay: Relay, prompt: string, headers: Record<string, string> = {}) =>
  call<JobView>(
    relay,
    "POST",
    "/v1/music/generations",
    { model: "music-1", prompt, async: true },
    headers,
  );

describe.skipIf(!HAVE_PG)("jobs across two relay instances", () => {
  beforeAll(async () => {
    database = await freshDatabase("cjobs");
    const jobLimits = { ...FAST, maxActivePerMember: 3 };
    // Room for one picture of the rig's (12 bytes) at each instance, not for two at one.
    const mediaLimits = { maxBytesPerMember: 20 };
    a = await clusterInstance("inst-a", database, keys(), { jobLimits, mediaLimits });
    b = await clusterInstance("inst-b", database, keys(), { jobLimits, mediaLimits });
    // The rig's tunnel is held by A; work submitted to B runs there across the internal link.
    rig = new MediaRig({
      relayUrl: a.url,
      apiKey: ALICE,
      models: { llm: ["chat-1"], image: ["image-1"], music: ["music-1"] },
      maxConcurrent: 4,
      access: { "chat-1": "club", "image-1": "club", "music-1": "club" },
      reply: () => "```json\n" + JSON.stringify(REPLY) + "\n```",
    });
    await rig.start();
    await vi.waitFor(
      async () => {
        const models = await call<ListView<{ id: string }>>(b, "GET", "/v1/models");
        expect(models.body.data.map((m) => m.id)).toContain("music-1");
      },
      { timeout: 10_000, interval: 20 },
    );
  });

  afterAll(async () => {
    rig.stop();
    await b.close();
    await a.close();
  });

  it("runs a job submitted to one instance on the other's rig, and serves it and its bytes from both", async () => {
    const submitted = await music(b, "across");
    expect(submitted.status).toBe(202);
    const id = submitted.body.id;
    const fromA = await waitJob(a, id, "PROCESSED");
    const fromB = await waitJob(b, id, "PROCESSED");
    // The same job; each instance names its result at its own address.
    expect({ ...fromA, result_url: undefined }).toEqual({ ...fromB, result_url: undefined });
    expect(fromB.result_url).toBe(`${b.url}/v1/jobs/${id}/result`);
    expect(fromA.attempts).toBe(1);
    expect(await owner(id)).toBe("inst-b");
    for (const relay of [a, b]) {
      const result = await fetch(`${relay.url}/v1/jobs/${id}/result`, {
        headers: { authorization: `Bearer ${ALICE}` },
      });
      expect(result.status).toBe(200);
      expect(Buffer.from(await result.arrayBuffer()).equals(MUSIC)).toBe(true);
    }
    // The list of either instance has it, once.
    for (const relay of [a, b]) {
      const list = await call<ListView<JobView>>(relay, "GET", "/v1/jobs");
      expect(list.body.data.filter((j) => j.id === id)).toHaveLength(1);
    }
    // Another member sees it from neither instance.
    for (const relay of [a, b]) {
      const other = await call(relay, "GET", `/v1/jobs/${id}`, undefined, {}, BOB);
      expect(other.status).toBe(404);
    }
  });

  it("cancels through the instance that does not keep the job, and the reset reaches the rig", async () => {
    rig.pause();
    try {
      const id = (await music(a, "to cancel")).body.id;
      await waitJob(b, id, "PROCESSING");
      const reset = new Promise((resolve) => rig.once("client-closed", resolve));
      const canceled = await call<JobView>(b, "POST", `/v1/jobs/${id}/cancel`);
      expect(canceled.status).toBe(200);
      expect(canceled.body.status).toBe("CANCELED");
      await reset;
      await waitJob(a, id, "CANCELED");
      // And retried from B again: it runs once the rig answers.
      const retried = await call<JobView>(b, "POST", `/v1/jobs/${id}/retry`);
      expect(retried.status).toBe(202);
      rig.resume();
      await waitJob(b, id, "PROCESSED");
    } finally {
      rig.resume();
    }
  });

  it("approves a workflow gate through the other instance", async () => {
    const started = await call<RunView>(a, "POST", "/v1/workflows/runs", {
      template: "illustrated-story",
      inputs: { topic: "a robot", scenes: 1, style: "oil" },
    });
    expect(started.status, JSON.stringify(started.body)).toBe(202);
    const id = started.body.id;
    await waitRun(b, id, "AWAITING");
    const approved = await call<RunView>(
      b,
      "POST",
      `/v1/workflows/runs/${id}/steps/review/approve`,
      {
        note: "via b",
      },
    );
    expect(approved.status).toBe(200);
    const done = await waitRun(b, id, "DONE");
    expect(done.steps.find((s) => s.step_id === "review")?.output).toEqual({
      approved: true,
      note: "via b",
    });
    expect(await owner(id)).toBe("inst-a");
    gated = id;
  });

  it("reads a batch from the other instance", async () => {
    const submitted = await call<BatchView>(b, "POST", "/v1/batches", {
      requests: [
        {
          custom_id: "one",
          endpoint: "/v1/music/generations",
          body: { model: "music-1", prompt: "1" },
        },
        {
          custom_id: "two",
          endpoint: "/v1/music/generations",
          body: { model: "music-1", prompt: "2" },
        },
      ],
    });
    expect(submitted.status, JSON.stringify(submitted.body)).toBe(202);
    await expect
      .poll(
        async () =>
          (await call<BatchView>(a, "GET", `/v1/batches/${submitted.body.id}`)).body.status,
      )
      .toBe("DONE");
    // Both lists show it with its counts, and each instance's run list has the other's run.
    for (const relay of [a, b]) {
      const list = await call<ListView<BatchView>>(relay, "GET", "/v1/batches");
      const mine = list.body.data.filter((x) => x.id === submitted.body.id);
      expect(mine.map((x) => x.counts.PROCESSED)).toEqual([2]);
      const runs = await call<ListView<RunView>>(relay, "GET", "/v1/workflows/runs");
      expect(runs.body.data.map((r) => r.id)).toContain(gated);
    }
  });

  it("serves a picture made through one instance from the other, and its changes everywhere at once", async () => {
    const made = await call<{ data: { url: string; id: string }[] }>(
      b,
      "POST",
      "/v1/images/generations",
      { model: "image-1", prompt: "a club", visibility: "PUBLIC" },
    );
    expect(made.status, JSON.stringify(made.body)).toBe(200);
    const picture = made.body.data[0];
    if (!picture) throw new Error("no picture");
    const path = new URL(picture.url).pathname;
    for (const relay of [a, b]) {
      const got = await fetch(`${relay.url}${path}`);
      expect(got.status).toBe(200);
      expect(Buffer.from(await got.arrayBuffer()).toString("hex")).toBe(PNG.toString("hex"));
      // A byte range from the other instance's copy in the database.
      const part = await fetch(`${relay.url}${path}`, { headers: { range: "bytes=2-5" } });
      expect(part.status).toBe(206);
      expect(Buffer.from(await part.arrayBuffer()).equals(PNG.subarray(2, 6))).toBe(true);
      const gallery = await call<ListView<{ id: string }>>(relay, "GET", "/v1/gallery");
      expect(gallery.body.data.map((i) => i.id)).toContain(picture.id);
      const files = await call<ListView<{ id: string }>>(relay, "GET", "/v1/files");
      expect(files.body.data.map((i) => i.id)).toContain(picture.id);
    }
    // Made PRIVATE through A (which did not make it): B refuses a keyless fetch at once.
    const patched = await call(a, "PATCH", `/v1/files/${picture.id}`, { visibility: "PRIVATE" });
    expect(patched.status).toBe(200);
    expect((await fetch(`${b.url}${path}`)).status).toBe(404);
    const owned = await fetch(`${b.url}${path}`, { headers: { authorization: `Bearer ${ALICE}` } });
    expect(owned.status).toBe(200);
    // Deleted through A: gone from both.
    expect((await call(a, "DELETE", `/v1/files/${picture.id}`)).status).toBe(200);
    for (const relay of [a, b]) {
      const gone = await fetch(`${relay.url}${path}`, {
        headers: { authorization: `Bearer ${ALICE}` },
      });
      expect(gone.status).toBe(404);
    }
  });

  it("counts the member's media library at every instance against one quota", async () => {
    const draw = (relay: Relay) =>
      call<{ data: { id: string }[] }>(relay, "POST", "/v1/images/generations", {
        model: "image-1",
        prompt: "quota",
      });
    const first = await draw(b);
    const second = await draw(a);
    expect([first.status, second.status]).toEqual([200, 200]);
    // B holds 12 bytes of its own, under 20; with A's 12 the member is over.
    const third = await draw(b);
    expect(third.status).toBe(403);
    expect(JSON.stringify(third.body)).toContain("media_quota_exceeded");
    for (const made of [first, second])
      expect((await call(a, "DELETE", `/v1/files/${made.body.data[0]?.id ?? ""}`)).status).toBe(
        200,
      );
    expect((await draw(b)).status).toBe(200);
  });

  it("answers a work request on the internal listener only with the cluster secret", async () => {
    const internal = a.cluster?.internalUrl ?? "";
    const session = http2.connect(internal);
    try {
      const ask = (headers: http2.OutgoingHttpHeaders) =>
        new Promise<number>((resolve, reject) => {
          const stream = session.request({ ":path": "/v1/jobs", ...headers }, { endStream: true });
          stream.on("response", (h) => resolve(Number(h[":status"])));
          stream.on("error", reject);
          stream.resume();
        });
      // A member's name alone, or with a wrong secret, opens nothing.
      expect(await ask({ "x-club-work-member": "alice" })).toBe(401);
      expect(
        await ask({
          "x-club-work-member": "alice",
          "x-club-cluster-secret": "not-the-secret-0123",
        }),
      ).toBe(401);
      expect(await ask({ "x-club-work-member": "alice", "x-club-cluster-secret": SECRET })).toBe(
        200,
      );
    } finally {
      session.close();
    }
  });

  it("counts the member's stored jobs at every instance against maxStoredPerMember", async () => {
    const stored = async (relay: Relay) =>
      (await call<ListView<JobView>>(relay, "GET", "/v1/jobs?limit=100")).body.data.length;
    const before = await stored(a);
    // A's store has room for 2 more finished jobs of alice's, counting B's; B the same.
    const limits = { ...FAST, maxStoredPerMember: before + 2 };
    const db = database;
    const c = await clusterInstance("inst-c", db, keys(), { jobLimits: limits });
    try {
      const first = await music(c, "s1");
      expect(first.status).toBe(202);
      await waitJob(c, first.body.id, "PROCESSED");
      const second = await music(c, "s2");
      expect(second.status).toBe(202);
      await waitJob(c, second.body.id, "PROCESSED");
      // Full: C makes room from its own oldest finished job, and the total stays at the limit.
      const third = await music(c, "s3");
      expect(third.status).toBe(202);
      await waitJob(c, third.body.id, "PROCESSED");
      expect(await stored(c)).toBe(before + 2);
      expect((await call(c, "GET", `/v1/jobs/${first.body.id}`)).status).toBe(404);
    } finally {
      await c.close();
    }
  });

  it("gives a repeated idempotency key the same job at either instance", async () => {
    const headers = { "idempotency-key": "cross-instance-1" };
    const first = await music(a, "once", headers);
    const again = await music(b, "once", headers);
    expect(first.status).toBe(202);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    await waitJob(b, first.body.id, "PROCESSED");
  });

  it("counts the member's jobs on both instances against one room", async () => {
    rig.pause();
    try {
      const held = [await music(a, "r1"), await music(a, "r2"), await music(b, "r3")];
      expect(held.map((h) => h.status)).toEqual([202, 202, 202]);
      const refused = await music(b, "r4");
      expect(refused.status).toBe(429);
      expect(refused.body.error?.message).toContain("limit of 3");
      const alsoRefused = await music(a, "r5");
      expect(alsoRefused.status).toBe(429);
      rig.resume();
      for (const h of held) await waitJob(a, h.body.id, "PROCESSED");
    } finally {
      rig.resume();
    }
  });
});

describe.skipIf(!HAVE_PG)("an instance killed mid-job", () => {
  let home: string;
  let survivor: Relay | undefined;
  let doomed: CliProcess | undefined;
  let rig2: MediaRig | undefined;

  afterAll(async () => {
    doomed?.child.kill("SIGKILL");
    rig2?.stop();
    await survivor?.close();
  });

  it("leaves its queued and running jobs to the survivor, which runs them with the attempt counted", async () => {
    const db = await freshDatabase("ckill");
    home = scratchDir();
    writeFileSync(join(home, "keys.json"), JSON.stringify({ [ALICE]: "alice" }));
    writeSecret(home, "cluster-secret", SECRET);
    // The survivor expires a silent instance after 1 s (instance.ts).
    const live = await clusterInstance("survivor", db, keys(), { jobLimits: FAST });
    const rig = new MediaRig({ relayUrl: live.url, apiKey: ALICE, maxConcurrent: 1 });
    await rig.start();
    survivor = live;
    rig2 = rig;
    const started = await relayProcess(home, "doomed", db);
    const proc = started.proc;
    doomed = proc;
    const relay = { url: started.url };
    await expect
      .poll(async () =>
        (await call<ListView<{ id: string }>>(relay, "GET", "/v1/models")).body.data.map(
          (m) => m.id,
        ),
      )
      .toContain("music-1");
    rig.pause();
    const running = (
      await call<JobView>(relay, "POST", "/v1/music/generations", {
        model: "music-1",
        prompt: "run",
        async: true,
      })
    ).body.id;
    await waitJob(relay, running, "PROCESSING");
    const queued = (
      await call<JobView>(relay, "POST", "/v1/music/generations", {
        model: "music-1",
        prompt: "wait",
        async: true,
      })
    ).body.id;
    await waitJob(live, queued, "QUEUED");
    const cut = new Promise((resolve) => rig.once("client-closed", resolve));
    proc.child.kill("SIGKILL");
    await cut;
    rig.resume();
    const first = await waitJob(live, running, "PROCESSED");
    expect(first.attempts).toBe(2);
    const second = await waitJob(live, queued, "PROCESSED");
    expect(second.attempts).toBe(1);
    const bytes = await fetch(`${live.url}/v1/jobs/${running}/result`, {
      headers: { authorization: `Bearer ${ALICE}` },
    });
    expect(Buffer.from(await bytes.arrayBuffer()).equals(MUSIC)).toBe(true);
  });
});

describe.skipIf(!HAVE_PG)("an instance the others expired while it was alive", () => {
  let x: Relay | undefined;
  let y: Relay | undefined;
  let late: MediaRig | undefined;

  afterAll(async () => {
    late?.stop();
    await y?.close();
    await x?.close();
  });

  it("lets go of what a survivor took over, so each job runs once", async () => {
    const db = await freshDatabase("cexpire");
    // X beats slowly, so the survivor claims its work before X notices it was expired.
    x = await clusterInstance("exp-x", db, keys(), {
      jobLimits: FAST,
      cluster: { heartbeatMs: 1000, expiryMs: 5000 },
    });
    const survivor = await clusterInstance("exp-y", db, keys(), {
      jobLimits: FAST,
      cluster: { heartbeatMs: 100, expiryMs: 5000 },
    });
    y = survivor;
    const xr = x;
    const id = (
      await call<JobView>(xr, "POST", "/v1/music/generations", {
        model: "later-1",
        prompt: "once",
        async: true,
      })
    ).body.id;
    await waitJob(xr, id, "QUEUED");
    // What a peer does when X has been silent past the expiry.
    const sql = new pg.Client({ connectionString: db });
    await sql.connect();
    try {
      await sql.query(
        "WITH d AS (DELETE FROM cluster_instances WHERE id = 'exp-x') SELECT pg_notify('club_registry', 'exp-x *')",
      );
      await vi.waitFor(
        async () => {
          const { rows } = await sql.query<{ owner: string }>(
            "SELECT owner FROM jobs WHERE id = $1",
            [id],
          );
          expect(rows[0]?.owner).toBe("exp-y");
        },
        { timeout: 10_000, interval: 20 },
      );
    } finally {
      await sql.end();
    }
    // X comes back and lets the job go: its list shows it once (the survivor's), not twice.
    await vi.waitFor(
      async () => {
        const list = await call<ListView<JobView>>(xr, "GET", "/v1/jobs");
        expect(list.body.data.filter((j) => j.id === id)).toHaveLength(1);
      },
      { timeout: 10_000, interval: 20 },
    );
    const rig = new MediaRig({
      relayUrl: survivor.url,
      apiKey: ALICE,
      models: { music: ["later-1"] },
    });
    late = rig;
    const seen: string[] = [];
    rig.on("request", (r: { body: { prompt?: unknown } }) => seen.push(String(r.body.prompt)));
    await rig.start();
    const done = await waitJob(xr, id, "PROCESSED");
    expect(done.attempts).toBe(1);
    // Another job through X after it is back runs too, and "once" ran once.
    const next = (
      await call<JobView>(xr, "POST", "/v1/music/generations", {
        model: "later-1",
        prompt: "after",
        async: true,
      })
    ).body.id;
    await waitJob(survivor, next, "PROCESSED");
    expect(seen.filter((p) => p === "once")).toHaveLength(1);
  });
});
