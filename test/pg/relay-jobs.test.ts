/**
 * A relay started with `--database` keeps its jobs in PostgreSQL: they survive a restart there
 * (the data directory's SQLite holds none), and a second relay on the same database is refused
 * while the first runs.
 */
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { call, startRelay, startRig, waitJob, type JobView } from "../relay/jobs/helpers.ts";
import { MUSIC } from "../relay/jobs/media-rig.ts";
import { freshDatabase, HAVE_PG } from "./db.ts";

describe.skipIf(!HAVE_PG)("a relay with its jobs in PostgreSQL", () => {
  it("queues the jobs of a stopped relay again from PostgreSQL and finishes them", async () => {
    const database = await freshDatabase();
    const dataDir = mkdtempSync(join(tmpdir(), "club-relay-data-"));
    const first = await startRelay({ dataDir, database });
    const rig = await startRig(first, { maxConcurrent: 1 });
    const submit = async (prompt: string): Promise<string> =>
      (
        await call<JobView>(first, "POST", "/v1/music/generations", {
          model: "music-1",
          prompt,
          async: true,
        })
      ).body.id;
    const done = await submit("before");
    await waitJob(first, done, "PROCESSED");
    rig.pause();
    const running = await submit("running");
    const queued = [await submit("queued 1"), await submit("queued 2")];
    await waitJob(first, running, "PROCESSING");
    const reset = once(rig, "client-closed");
    await first.close();
    await reset;

    // The jobs are rows in PostgreSQL, none in the data directory's SQLite.
    const client = new pg.Client({ connectionString: database });
    await client.connect();
    const { rows } = await client.query<{ id: string; status: string }>(
      "SELECT id, status FROM jobs ORDER BY seq",
    );
    await client.end();
    expect(rows).toEqual([
      { id: done, status: "PROCESSED" },
      ...[running, ...queued].map((id) => ({ id, status: "QUEUED" })),
    ]);
    const sqlite = new DatabaseSync(join(dataDir, "jobs.db"));
    expect(sqlite.prepare("SELECT count(*) AS n FROM jobs").get()).toEqual({ n: 0 });
    sqlite.close();

    const second = await startRelay({ dataDir, database, port: first.port });
    rig.resume();
    for (const id of [running, ...queued]) {
      const job = await waitJob(second, id, "PROCESSED");
      expect(job.attempts).toBe(1);
    }
    const res = await fetch(`${second.url}/v1/jobs/${done}/result`, {
      headers: { authorization: "Bearer sk-alice-jobs-0123456789" },
    });
    expect(Buffer.from(await res.arrayBuffer()).equals(MUSIC)).toBe(true);
    rig.stop();
    await second.close();
  });

  it("refuses a second relay on a database another relay holds", async () => {
    const database = await freshDatabase();
    const first = await startRelay({ database, instanceLeaseMs: 600 });
    await expect(startRelay({ database, instanceLeaseMs: 600 })).rejects.toMatchObject({
      code: "database_held",
      message: expect.stringMatching(/holds this database/),
    });
    const job = await call<JobView>(first, "POST", "/v1/music/generations", {
      model: "music-1",
      prompt: "still served",
      async: true,
    });
    expect(job.status).toBe(202);
    await first.close();
  });
});
