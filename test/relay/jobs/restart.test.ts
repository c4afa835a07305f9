/**
 * Jobs survive a relay restart: a relay with a data directory is closed while jobs are queued
 * and running, and a new one on the same directory and port finishes them all. Finished results
 * are still served.
 */
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { call, startRelay, startRig, waitJob, type JobView } from "./helpers.ts";
import { MUSIC } from "./media-rig.ts";

it("queues the jobs of a stopped relay again and finishes them after it restarts", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "club-relay-data-"));
  const first = await startRelay({ dataDir });
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
  await reset; // the running job's stream was reset at the provider

  const second = await startRelay({ dataDir, port: first.port });
  rig.resume();
  for (const id of [running, ...queued]) {
    const job = await waitJob(second, id, "PROCESSED");
    expect(job.attempts).toBe(1);
  }
  const res = await fetch(`${second.url}/v1/jobs/${done}/result`, {
    headers: { authorization: "Bearer sk-alice-jobs-0123456789" },
  });
  expect(Buffer.from(await res.arrayBuffer()).equals(MUSIC)).toBe(true);
  expect(rig.requests.filter((r) => r.body.prompt === "running")).toHaveLength(2);
  rig.stop();
  await second.close();
});
