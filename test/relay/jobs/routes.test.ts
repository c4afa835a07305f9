/**
 * The work API's route table over a real relay: each (method, path) reaches its handler once;
 * a path no route matches is a 404 and a path served only under another method a 405 with an
 * `Allow` header, for jobs, batches and workflows alike.
 */
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
let submitted: JobView;
let processed: JobView | undefined;

/** The job submitted at the start, once it is done (expect.poll runs only inside a test). */
async function theJob(): Promise<JobView> {
  processed ??= await waitJob(relay, submitted.id, "PROCESSED");
  return processed;
}

beforeAll(async () => {
  relay = await startRelay();
  rig = await startRig(relay);
  const answer = await call<JobView>(relay, "POST", "/v1/images/generations", {
    model: "image-1",
    prompt: "a route",
    async: true,
  });
  submitted = answer.body;
});

afterAll(async () => {
  rig.stop();
  await relay.close();
});

describe("the work API's route table", () => {
  it.each([
    ["POST", "/v1/jobs", "GET"],
    ["DELETE", "/v1/batches", "POST, GET"],
    ["PUT", "/v1/workflows/runs", "POST, GET"],
    ["POST", "/v1/workflows/templates", "GET"],
    ["GET", "/v1/batches/batch_x/cancel", "POST"],
    ["GET", "/v1/workflows/runs/run_x/cancel", "POST"],
    ["GET", "/v1/workflows/runs/run_x/steps/plan/approve", "POST"],
  ])("answers %s %s with 405 and Allow: %s", async (method, path, allow) => {
    const answer = await call(relay, method, path);
    expect(answer.status).toBe(405);
    expect(answer.headers.get("allow")).toBe(allow);
    expect(answer.body.error).toEqual({
      type: "invalid_request_error",
      message: `${method} is not allowed on ${path}; use ${allow.replace(", ", " or ")}`,
    });
  });

  it.each([
    "/v1/workflows",
    "/v1/workflows/templates/x",
    "/v1/workflows/runs/run_x/steps/plan",
    "/v1/workflows/runs/run_x/steps/plan/maybe",
    "/v1/batches/batch_x/cancel/now",
    "/v1/jobs/job_x/result/more",
  ])("answers GET %s, which no route matches, with 404", async (path) => {
    const answer = await call(relay, "GET", path);
    expect(answer.status).toBe(404);
    expect(answer.body.error).toEqual({
      type: "not_found_error",
      message: `unknown endpoint GET ${path}`,
    });
  });

  it("answers a route of a job, batch or run the member does not have with 404 naming it", async () => {
    for (const [path, what, id] of [
      ["/v1/jobs/job_x", "job", "job_x"],
      ["/v1/jobs/job_x/result", "job", "job_x"],
      ["/v1/batches/batch_x", "batch", "batch_x"],
      ["/v1/workflows/runs/run_x", "workflow run", "run_x"],
    ] as const) {
      const answer = await call(relay, "GET", path);
      expect(answer.status).toBe(404);
      expect(answer.body.error.message).toBe(`no ${what} "${id}"`);
    }
    const job = await theJob();
    const other = await call(
      relay,
      "POST",
      `/v1/jobs/${job.id}/retry`,
      {},
      {},
      "sk-bob-jobs-0123456789",
    );
    expect(other.status).toBe(404);
  });

  it("a route of an existing job that is not in the table is 404, whatever the method", async () => {
    const job = await theJob();
    for (const method of ["GET", "POST"]) {
      const answer = await call(relay, method, `/v1/jobs/${job.id}/nope`);
      expect(answer.status).toBe(404);
    }
  });

  it("drops empty segments and decodes escaped ones; a malformed escape matches nothing", async () => {
    const job = await theJob();
    const list = await call<ListView<JobView>>(relay, "GET", "/v1/jobs/");
    expect(list.body.data.map((j) => j.id)).toContain(job.id);
    const slashes = await call<JobView>(relay, "GET", `/v1/jobs//${job.id}/`);
    expect(slashes.body.id).toBe(job.id);
    const escaped = encodeURIComponent(job.id).replace("_", "%5F");
    const decoded = await call<JobView>(relay, "GET", `/v1/jobs/${escaped}`);
    expect(decoded.body.id).toBe(job.id);
    const result = await call(relay, "GET", `/v1/jobs/${job.id}/%72esult`);
    expect(result.status).toBe(200);
    const malformed = await call(relay, "GET", "/v1/jobs/%E0%A4%A");
    expect(malformed.status).toBe(404);
    expect(malformed.body.error.message).toBe('no job "%E0%A4%A"');
  });

  it("cancels a batch by POST /v1/batches/:id (hosted) as by …/cancel", async () => {
    const submit = async (): Promise<BatchView> =>
      (
        await call<BatchView>(relay, "POST", "/v1/batches", {
          requests: [
            { endpoint: "/v1/images/generations", body: { model: "image-1", prompt: "b" } },
          ],
        })
      ).body;
    rig.pause();
    for (const suffix of ["", "/cancel"]) {
      const batch = await submit();
      const answer = await call<BatchView>(relay, "POST", `/v1/batches/${batch.id}${suffix}`);
      expect(answer.status).toBe(200);
      expect(answer.body).toMatchObject({ id: batch.id, status: "CANCELED" });
      expect(answer.body.counts.CANCELED).toBe(1);
    }
    rig.resume();
  });
});
