/**
 * PostgreSQL stopped under a running relay (`pg_ctl stop`, then `start`): requests that need the
 * database get 503 with `code: "database_unavailable"` in the club's envelope and a clear
 * message; the provider's tunnel stays up and synchronous requests are served; once the server
 * is back the pool reconnects and submissions are accepted again. Runs its own cluster, so
 * stopping it touches no other test.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startRelay, startRig, waitJob, type JobView } from "../relay/jobs/helpers.ts";
import { MUSIC } from "../relay/jobs/media-rig.ts";
import { findPostgresBin, startCluster, type Cluster } from "./cluster.ts";
import { HAVE_PG } from "./db.ts";

interface Envelope {
  error: { type: string; message: string; code?: string };
}

const bin = findPostgresBin();

describe.skipIf(!HAVE_PG || !bin)("a relay whose PostgreSQL stops and comes back", () => {
  let cluster: Cluster;
  beforeAll(async () => {
    cluster = await startCluster(bin!);
  });
  afterAll(() => cluster.stop());

  it("answers 503 database_unavailable while it is down, keeps the tunnel, and recovers", async () => {
    const relay = await startRelay({
      dataDir: mkdtempSync(join(tmpdir(), "club-relay-data-")),
      database: cluster.url,
    });
    const rig = await startRig(relay);
    const submit = (prompt: string) =>
      call<JobView & Envelope>(relay, "POST", "/v1/music/generations", {
        model: "music-1",
        prompt,
        async: true,
      });
    try {
      const before = await submit("before");
      expect(before.status).toBe(202);
      await waitJob(relay, before.body.id, "PROCESSED");

      cluster.halt();
      const down = await submit("while down");
      expect(down.status).toBe(503);
      expect(down.body.error).toMatchObject({
        type: "server_error",
        code: "database_unavailable",
        message: expect.stringMatching(
          /^the relay's database is unavailable \(.+\): nothing was stored; try again later$/,
        ),
      });
      const usage = await call<Envelope>(relay, "GET", "/v1/usage");
      expect(usage.status).toBe(503);
      expect(usage.body.error.code).toBe("database_unavailable");
      // The tunnel is up: the provider still serves a synchronous request.
      const res = await fetch(`${relay.url}/v1/music/generations`, {
        method: "POST",
        headers: {
          authorization: "Bearer sk-alice-jobs-0123456789",
          "content-type": "application/json",
        },
        body: JSON.stringify({ model: "music-1", prompt: "sync while down" }),
      });
      expect(res.status).toBe(200);
      expect(Buffer.from(await res.arrayBuffer()).equals(MUSIC)).toBe(true);
      expect(relay.registry.all()).toHaveLength(1);
      // Finished jobs are still shown: the relay holds them in memory.
      expect((await call<JobView>(relay, "GET", `/v1/jobs/${before.body.id}`)).status).toBe(200);

      cluster.resume();
      let after: Awaited<ReturnType<typeof submit>> | undefined;
      await expect
        .poll(async () => (after = await submit("after")).status, { timeout: 30_000 })
        .toBe(202);
      await waitJob(relay, after!.body.id, "PROCESSED");
      expect(rig.requests.map((r) => r.body.prompt)).not.toContain("while down");
    } finally {
      rig.stop();
      await relay.close();
    }
  });
});
