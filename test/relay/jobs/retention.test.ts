/**
 * What the relay keeps: finished jobs go (with their result files) once the retention period is
 * over, and a member at the stored-jobs limit loses their oldest finished job first.
 */
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { call, startRelay, startRig, waitJob, type JobView, type ListView } from "./helpers.ts";

const music = { model: "music-1", prompt: "x", async: true };

it("deletes finished jobs and their results after the retention period", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "club-relay-retain-"));
  const first = await startRelay({ dataDir });
  const rig = await startRig(first);
  const job = (await call<JobView>(first, "POST", "/v1/music/generations", music)).body;
  await waitJob(first, job.id, "PROCESSED");
  expect(readdirSync(join(dataDir, "results"))).toEqual([job.id]);
  await first.close();
  // Pruning runs when a relay starts (and every hour): with no retention, everything finished goes.
  const second = await startRelay({ dataDir, port: first.port, jobLimits: { retainMs: 0 } });
  await expect.poll(async () => (await call(second, "GET", `/v1/jobs/${job.id}`)).status).toBe(404);
  await expect.poll(() => readdirSync(join(dataDir, "results"))).toEqual([]);
  rig.stop();
  await second.close();
});

it("makes room for a new job by dropping the member's oldest finished one", async () => {
  const relay = await startRelay({ jobLimits: { maxStoredPerMember: 2 } });
  const rig = await startRig(relay);
  const ids: string[] = [];
  for (let i = 0; i < 3; i++) {
    const job = (await call<JobView>(relay, "POST", "/v1/music/generations", music)).body;
    await waitJob(relay, job.id, "PROCESSED");
    ids.push(job.id);
  }
  const list = await call<ListView<JobView>>(relay, "GET", "/v1/jobs");
  expect(list.body.data.map((j) => j.id)).toEqual([ids[2], ids[1]]);
  rig.stop();
  await relay.close();
});
