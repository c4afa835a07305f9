/** Batches at the relay, in process: checked whole, one job each, counted, listed and canceled. */
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Relay } from "../../../src/relay/server.ts";
import {
  call,
  startRelay,
  startRig,
  waitJob,
  type BatchView,
  type JobView,
  type ListView,
} from "./helpers.ts";
import type { MediaRig } from "./media-rig.ts";

let relay: Relay;
let rig: MediaRig;

beforeAll(async () => {
  relay = await startRelay();
  rig = await startRig(relay, { maxConcurrent: 2 });
});

afterAll(async () => {
  rig.stop();
  await relay.close();
});

const image = (prompt: string): Record<string, unknown> => ({
  endpoint: "/v1/images/generations",
  body: { model: "image-1", prompt },
});

async function batchDone(id: string, status: string): Promise<BatchView> {
  const get = async (): Promise<BatchView> =>
    (await call<BatchView>(relay, "GET", `/v1/batches/${id}`)).body;
  await expect
    .poll(async () => (await get()).status, { timeout: 15_000, interval: 20 })
    .toBe(status);
  return get();
}

describe("batches", () => {
  it("queues one job per request and counts them by state", async () => {
    const answer = await call<BatchView>(relay, "POST", "/v1/batches", {
      requests: [
        { ...image("one"), custom_id: "first" },
        { endpoint: "music/generations", body: { model: "music-1", prompt: "two" } },
        image("three"),
      ],
    });
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ object: "inference.batch", total: 3 });
    expect(answer.body.jobs?.map((j) => j.custom_id)).toEqual(["first", null, null]);
    const done = await batchDone(answer.body.id, "DONE");
    expect(done.counts).toEqual({ QUEUED: 0, PROCESSING: 0, PROCESSED: 3, FAILED: 0, CANCELED: 0 });
    const job = await call<JobView>(relay, "GET", `/v1/jobs/${done.jobs?.[1]?.id ?? ""}`);
    expect(job.body).toMatchObject({ batch_id: done.id, model: "music-1", status: "PROCESSED" });
  });

  it("takes 256 requests and refuses 257", async () => {
    const requests = Array.from({ length: 256 }, (_, i) => image(`p${i}`));
    const full = await call<BatchView>(relay, "POST", "/v1/batches", { requests });
    expect(full.status).toBe(202);
    expect(full.body.total).toBe(256);
    const over = await call(relay, "POST", "/v1/batches", { requests: [...requests, image("x")] });
    expect(over.status).toBe(400);
    expect(over.body.error.message).toMatch(/1 to 256/);
    const done = await batchDone(full.body.id, "DONE");
    expect(done.counts.PROCESSED).toBe(256);
  });

  it("refuses a batch with a bad request, naming each, and queues nothing", async () => {
    const before = (await call<ListView<JobView>>(relay, "GET", "/v1/jobs?limit=1")).body.data[0];
    const answer = await call(relay, "POST", "/v1/batches", {
      requests: [
        image("fine"),
        { endpoint: "/v1/images/generations", body: { prompt: "no model" } },
        { endpoint: "/v1/audio/transcriptions", body: { model: "x" } },
      ],
    });
    expect(answer.status).toBe(400);
    expect(answer.body.error.message).toContain('requests[1]: "model" is required');
    expect(answer.body.error.message).toContain(
      "requests[2]: /v1/audio/transcriptions cannot run as a job",
    );
    const after = (await call<ListView<JobView>>(relay, "GET", "/v1/jobs?limit=1")).body.data[0];
    expect(after?.id).toBe(before?.id);
  });

  it("cancels the jobs of a batch that have not finished, at the provider too", async () => {
    rig.pause();
    const answer = await call<BatchView>(relay, "POST", "/v1/batches", {
      requests: [image("a"), image("b"), image("c")],
    });
    const [first] = answer.body.jobs ?? [];
    await waitJob(relay, first?.id ?? "", "PROCESSING");
    const reset = once(rig, "client-closed");
    const canceled = await call<BatchView>(relay, "POST", `/v1/batches/${answer.body.id}/cancel`);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe("CANCELED");
    expect(canceled.body.counts.CANCELED).toBe(3);
    await reset;
    rig.resume();
  });

  it("lists batches newest first and replays a repeated Idempotency-Key", async () => {
    const headers = { "idempotency-key": "batch-1" };
    const a = await call<BatchView>(
      relay,
      "POST",
      "/v1/batches",
      { requests: [image("k")] },
      headers,
    );
    const b = await call<BatchView>(
      relay,
      "POST",
      "/v1/batches",
      { requests: [image("k")] },
      headers,
    );
    expect(b.body.id).toBe(a.body.id);
    expect(b.headers.get("idempotent-replayed")).toBe("true");
    const list = await call<ListView<BatchView>>(relay, "GET", "/v1/batches?limit=2");
    expect(list.body.data[0]?.id).toBe(a.body.id);
    expect(list.body.data[0]?.jobs).toBeUndefined();
    expect(list.body.has_more).toBe(true);
    expect((await call(relay, "GET", "/v1/batches/batch_000000000000000000000000")).status).toBe(
      404,
    );
  });
});
