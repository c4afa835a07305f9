/**
 * Async jobs at the relay, in process: a real relay and a provider on the daemon's tunnel
 * client, over real sockets. Queueing, results (inline and as bytes), cancel at the provider,
 * retry, backoff, idempotency, the `no_provider` deadline and the bounds.
 */
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Relay } from "../../../src/relay/server.ts";
import {
  BOB,
  call,
  startRelay,
  startRig,
  waitJob,
  type JobView,
  type ListView,
} from "./helpers.ts";
import { MUSIC, PNG, VIDEO, type MediaRig } from "./media-rig.ts";

let relay: Relay;
let rig: MediaRig;

beforeAll(async () => {
  relay = await startRelay({
    jobLimits: { maxActivePerMember: 8, maxResultBytes: 128 * 1024, noProviderTimeoutMs: 300 },
  });
  rig = await startRig(relay, { maxConcurrent: 1 });
});

afterAll(async () => {
  rig.stop();
  await relay.close();
});

const image = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: "image-1",
  prompt: "a glowing crystal cave",
  async: true,
  visibility: "PUBLIC",
  ...extra,
});

async function submit(path: string, body: Record<string, unknown>, headers = {}): Promise<JobView> {
  const answer = await call<JobView>(relay, "POST", path, body, headers);
  expect(answer.status).toBe(202);
  return answer.body;
}

describe("async jobs", () => {
  it("queues a job, runs it at the provider and shows a JSON result inline", async () => {
    const job = await submit("/v1/images/generations", image());
    expect(job).toMatchObject({
      id: expect.stringMatching(/^job_[0-9a-f]{24}$/),
      object: "inference.job",
      status: "QUEUED",
      model: "image-1",
      created: expect.any(Number),
    });
    const done = await waitJob(relay, job.id, "PROCESSED");
    expect(done.result).toEqual({
      created: 1,
      data: [{ b64_json: PNG.toString("base64"), revised_prompt: "a glowing crystal cave" }],
    });
    expect(done.attempts).toBe(1);
    // The provider saw the request without the club's fields.
    const seen = rig.requests.at(-1);
    expect(seen?.path).toBe("/v1/images/generations");
    expect(seen?.body).not.toHaveProperty("async");
    expect(seen?.body).not.toHaveProperty("visibility");
    const fetched = await call(relay, "GET", `/v1/jobs/${job.id}/result`);
    expect(fetched.body).toEqual(done.result);
  });

  it("keeps byte results in a file and serves them at result_url with the member's key", async () => {
    const job = await submit("/v1/music/generations", {
      model: "music-1",
      prompt: "x",
      async: true,
    });
    const done = await waitJob(relay, job.id, "PROCESSED");
    expect(done).toMatchObject({ result_content_type: "audio/wav", result_bytes: MUSIC.length });
    expect(done.result).toBeUndefined();
    const url = done.result_url ?? "";
    expect(url).toBe(`${relay.url}/v1/jobs/${job.id}/result`);
    const res = await fetch(url, { headers: { authorization: `Bearer ${BOB}` } });
    expect(res.status).toBe(404);
    const mine = await fetch(url, {
      headers: { authorization: `Bearer sk-alice-jobs-0123456789` },
    });
    expect(mine.headers.get("content-type")).toBe("audio/wav");
    expect(Buffer.from(await mine.arrayBuffer()).equals(MUSIC)).toBe(true);
  });

  it("cancels a running job at the provider: its stream is reset", async () => {
    rig.pause();
    const job = await submit("/v1/videos/generations", {
      model: "video-1",
      prompt: "x",
      async: true,
    });
    await waitJob(relay, job.id, "PROCESSING");
    const closed = once(rig, "client-closed");
    const canceled = await call<JobView>(relay, "POST", `/v1/jobs/${job.id}/cancel`);
    expect(canceled.body.status).toBe("CANCELED");
    await closed;
    rig.resume();
    const again = await call(relay, "POST", `/v1/jobs/${job.id}/cancel`);
    expect(again.status).toBe(409);
  });

  it("cancels a queued job before it reaches a provider, then retries it", async () => {
    rig.pause();
    const first = await submit("/v1/images/generations", image());
    await waitJob(relay, first.id, "PROCESSING");
    const queued = await submit("/v1/images/generations", image({ prompt: "second" }));
    await call(relay, "POST", `/v1/jobs/${queued.id}/cancel`);
    rig.resume();
    await waitJob(relay, first.id, "PROCESSED");
    expect(rig.requests.some((r) => r.body.prompt === "second")).toBe(false);
    const retried = await call<JobView>(relay, "POST", `/v1/jobs/${queued.id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ status: "QUEUED", attempts: 0 });
    await waitJob(relay, queued.id, "PROCESSED");
    const twice = await call(relay, "POST", `/v1/jobs/${queued.id}/retry`);
    expect(twice.status).toBe(409);
  });

  it("retries provider failures with backoff, then fails after the last attempt", async () => {
    rig.failNext = 1;
    const recovered = await waitJob(
      relay,
      (await submit("/v1/images/generations", image())).id,
      "PROCESSED",
    );
    expect(recovered.attempts).toBe(2);
    rig.failNext = 3;
    const failed = await waitJob(
      relay,
      (await submit("/v1/images/generations", image())).id,
      "FAILED",
    );
    expect(failed.attempts).toBe(3);
    expect(failed.error).toMatchObject({
      type: "server_error",
      message: "the engine crashed",
      status: 500,
    });
  });

  it("fails at once on a 4xx from the provider", async () => {
    const job = await submit("/v1/images/generations", image({ fail_with: 400 }));
    const failed = await waitJob(relay, job.id, "FAILED");
    expect(failed.attempts).toBe(1);
    expect(failed.error).toMatchObject({ type: "invalid_request_error", status: 400 });
  });

  it("fails a result larger than the limit", async () => {
    const big = await submit("/v1/videos/generations", {
      model: "video-1",
      prompt: "x",
      async: true,
    });
    const failed = await waitJob(relay, big.id, "FAILED");
    expect(VIDEO.length).toBeGreaterThan(128 * 1024);
    expect(failed.error).toMatchObject({ type: "result_too_large" });
    expect(failed.attempts).toBe(1);
  });

  it("deduplicates by Idempotency-Key per member", async () => {
    const headers = { "idempotency-key": "abc-123" };
    const first = await submit("/v1/images/generations", image(), headers);
    const again = await call<JobView>(relay, "POST", "/v1/images/generations", image(), headers);
    expect(again.status).toBe(202);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.body.id).toBe(first.id);
    const bobs = await call<JobView>(
      relay,
      "POST",
      "/v1/images/generations",
      image(),
      headers,
      BOB,
    );
    expect(bobs.body.id).not.toBe(first.id);
    await waitJob(relay, first.id, "PROCESSED");
  });

  it("fails a job whose model nobody serves after the no-provider wait", async () => {
    const job = await submit("/v1/chat/completions", {
      model: "nobody",
      messages: [],
      async: true,
    });
    const failed = await waitJob(relay, job.id, "FAILED");
    expect(failed.error).toMatchObject({ type: "no_provider" });
    expect(failed.error?.message).toMatch(/no online provider served model "nobody"/);
  });

  it("lists a member's jobs newest first, filtered and bounded", async () => {
    const list = await call<ListView<JobView>>(relay, "GET", "/v1/jobs?limit=2");
    expect(list.body.data).toHaveLength(2);
    expect(list.body.has_more).toBe(true);
    const [a, b] = list.body.data;
    expect((a?.created ?? 0) >= (b?.created ?? 0)).toBe(true);
    const failed = await call<ListView<JobView>>(relay, "GET", "/v1/jobs?status=failed&limit=100");
    expect(failed.body.data.every((j) => j.status === "FAILED")).toBe(true);
    const active = await call<ListView<JobView>>(relay, "GET", "/v1/jobs?active=1");
    expect(active.body.data).toEqual([]);
    expect((await call(relay, "GET", "/v1/jobs?limit=101")).status).toBe(400);
    expect((await call(relay, "GET", "/v1/jobs?status=DONE")).status).toBe(400);
    const bobs = await call<ListView<JobView>>(relay, "GET", "/v1/jobs", undefined, {}, BOB);
    expect(bobs.body.data.map((j) => j.id)).not.toContain(list.body.data[0]?.id);
    const other = await call(
      relay,
      "GET",
      `/v1/jobs/${list.body.data[0]?.id ?? ""}`,
      undefined,
      {},
      BOB,
    );
    expect(other.status).toBe(404);
  });

  it("refuses bad submissions and bounds the queue per member", async () => {
    const noModel = await call(relay, "POST", "/v1/images/generations", { async: true });
    expect(noModel).toMatchObject({
      status: 400,
      body: { error: { type: "invalid_request_error" } },
    });
    const syncOnly = await call(relay, "POST", "/v1/voice/generations", {
      model: "x",
      async: true,
    });
    expect(syncOnly.status).toBe(400);
    rig.pause();
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await submit("/v1/images/generations", image())).id);
    const full = await call(relay, "POST", "/v1/images/generations", image());
    expect(full).toMatchObject({ status: 429, body: { error: { type: "rate_limit_error" } } });
    rig.resume();
    for (const id of ids) await waitJob(relay, id, "PROCESSED");
  });
});
