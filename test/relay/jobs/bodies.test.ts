/**
 * What the relay keeps of a job's request body, and the per-member byte bounds: a PROCESSED
 * job's body goes, a FAILED one's stays for `retry` within `maxRetainedBodyBytesPerMember`
 * (beyond it the oldest go and their retry answers 409), and `maxStoredBytesPerMember` answers
 * 429 naming itself. An in-process relay on a data directory, its database read after close.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { expect, it } from "vitest";
import { call, startRelay, startRig, waitJob, type JobView } from "./helpers.ts";

const image = (prompt: string, size = 0) => ({
  model: "image-1",
  prompt,
  async: true,
  ...(size > 0 ? { padding: "z".repeat(size) } : {}),
});

function bodies(dataDir: string): string[] {
  const db = new DatabaseSync(join(dataDir, "jobs.db"));
  try {
    return (db.prepare("SELECT id FROM job_bodies ORDER BY id").all() as { id: string }[]).map(
      (r) => r.id,
    );
  } finally {
    db.close();
  }
}

it("drops a processed job's body, keeps failed ones within the quota, and refuses to retry a dropped one", async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "club-relay-bodies-"));
  // Room for two failed 10 KiB bodies, not three.
  const relay = await startRelay({
    dataDir,
    jobLimits: { maxRetainedBodyBytesPerMember: 25 * 1024, maxAttempts: 1 },
  });
  const rig = await startRig(relay);
  const submit = async (prompt: string): Promise<string> =>
    (await call<JobView>(relay, "POST", "/v1/images/generations", image(prompt, 10 * 1024))).body
      .id;
  const done = await submit("fine");
  await waitJob(relay, done, "PROCESSED");
  const failed: string[] = [];
  for (const prompt of ["first", "second", "third"]) {
    rig.failNext = 1;
    const id = await submit(prompt);
    await waitJob(relay, id, "FAILED");
    failed.push(id);
  }
  const [oldest, , newest] = failed;
  const refused = await call(relay, "POST", `/v1/jobs/${oldest}/retry`);
  expect(refused.status).toBe(409);
  expect(refused.body.error.message).toMatch(
    /request body was dropped .*maxRetainedBodyBytesPerMember.*submit the request again/,
  );
  const retried = await call<JobView>(relay, "POST", `/v1/jobs/${newest}/retry`);
  expect(retried.status).toBe(202);
  await waitJob(relay, newest ?? "", "PROCESSED");
  expect(rig.requests.filter((r) => r.body.prompt === "third")).toHaveLength(2);
  rig.stop();
  await relay.close();
  // Only the middle failed job still has its body: the oldest passed the quota, the newest ran.
  expect(bodies(dataDir)).toEqual([failed[1]]);
});

it("answers 429 naming maxStoredBytesPerMember when a member's stored bytes would pass it", async () => {
  const relay = await startRelay({ jobLimits: { maxStoredBytesPerMember: 64 * 1024 } });
  const first = await call<JobView>(relay, "POST", "/v1/images/generations", image("a", 40_000));
  expect(first.status).toBe(202);
  const second = await call(relay, "POST", "/v1/images/generations", image("b", 40_000));
  expect(second.status).toBe(429);
  expect(second.body.error).toMatchObject({ type: "rate_limit_error" });
  expect(second.body.error.message).toMatch(
    /hold \d+ bytes and these \d+ more would pass the limit of 65536 bytes \(maxStoredBytesPerMember\)/,
  );
  // Another member has bytes of their own.
  const bob = await call(
    relay,
    "POST",
    "/v1/images/generations",
    image("b", 40_000),
    {},
    "sk-bob-jobs-0123456789",
  );
  expect(bob.status).toBe(202);
  await relay.close();
});

it("answers 429 naming maxStoredPerMember when only unfinished jobs could make room", async () => {
  const relay = await startRelay({ jobLimits: { maxStoredPerMember: 2 } });
  for (const p of ["a", "b"])
    expect((await call(relay, "POST", "/v1/images/generations", image(p))).status).toBe(202);
  const third = await call(relay, "POST", "/v1/images/generations", image("c"));
  expect(third.status).toBe(429);
  expect(third.body.error.message).toMatch(/the limit is 2 \(maxStoredPerMember\)/);
  await relay.close();
});
