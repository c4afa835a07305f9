/**
 * The public routes of jobs and batches: `"async": true` submissions, `/v1/jobs…` and
 * `/v1/batches…`. Refusals are thrown as `HttpError`s and answered by `work.ts`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream";
import type { Endpoint } from "../../protocol/index.ts";
import type { Batches } from "./batches.ts";
import { REPLAYED, baseUrl, idempotencyKey, page, readJson, statusFilter } from "./http.ts";
import type { JobSystem } from "./jobs.ts";
import { jobRequest } from "./request.ts";
import { openResult } from "./results.ts";
import { makeRoom } from "./retention.ts";
import { route, type Route, type WorkRequest } from "./route-table.ts";
import {
  JOB_STATUSES,
  isTerminal,
  type BatchRecord,
  type JobLimits,
  type JobRecord,
} from "./types.ts";
import { jobView } from "./view.ts";
import { conflict, notFound } from "./work-error.ts";
import { HttpError } from "../../http/error.ts";
import { sendJson } from "../../http/respond.ts";

/** What the job and batch routes work with. */
export interface JobRouteContext {
  jobs: JobSystem;
  batches: Batches;
  resultsDir: string;
  limits: JobLimits;
  maxJsonBytes: number;
}

/** `POST <endpoint>` with `"async": true`: 202 and the job (the same job again for a repeated key). */
export async function submitAsync(
  c: JobRouteContext,
  req: IncomingMessage,
  res: ServerResponse,
  member: string,
  endpoint: Endpoint,
  json: Record<string, unknown>,
): Promise<void> {
  const key = idempotencyKey(req);
  const checked = jobRequest(endpoint.path, json, c.limits.maxBodyBytes);
  if (typeof checked === "string") throw new HttpError(400, "invalid_request_error", checked);
  await makeRoom(c.jobs, member, 1, c.limits, checked.body.length);
  // From here on nothing awaits until the job is queued, so a repeated key cannot slip in.
  const known = c.jobs.replay(member, key);
  if (known) return sendJson(res, 202, jobView(known, baseUrl(req)), REPLAYED);
  c.jobs.checkRoom(member, 1);
  const origin = key === undefined ? {} : { idempotencyKey: key };
  const { jobs, saved } = c.jobs.enqueue(member, [checked], origin);
  // The job as submitted: by the time it is saved it may already be running.
  const view = jobs[0] && jobView(jobs[0], baseUrl(req));
  await saved;
  sendJson(res, 202, view);
}

/** The job of `id`, or its 404. */
function jobOf(c: JobRouteContext, member: string, id: string): JobRecord {
  const job = c.jobs.get(member, id);
  if (job === undefined) throw notFound("job", id);
  return job;
}

/** `GET /v1/jobs`, `GET /v1/jobs/:id`, `GET …/result`, `POST …/cancel`, `POST …/retry`. */
export function jobRoutes(c: JobRouteContext): Route[] {
  return [
    route("GET", "/v1/jobs", ({ req, res, member, url, elsewhere }) => {
      const status = statusFilter(url, JOB_STATUSES);
      const active = ["1", "true"].includes(url.searchParams.get("active") ?? "");
      const mine = [...c.jobs.ofMember(member), ...(elsewhere?.jobs ?? [])]
        .sort((x, y) => x.seq - y.seq)
        .filter(
          (j) =>
            (status === undefined || j.status === status) && (!active || !isTerminal(j.status)),
        )
        .reverse();
      const base = baseUrl(req);
      sendJson(
        res,
        200,
        page(mine, url, (j) => jobView(j, base)),
      );
    }),
    route("GET", "/v1/jobs/:id", ({ req, res, member, params }) => {
      sendJson(res, 200, jobView(jobOf(c, member, params.id), baseUrl(req)));
    }),
    route("GET", "/v1/jobs/:id/result", async ({ res, member, params: { id } }) => {
      const job = jobOf(c, member, id);
      const result = job.result;
      if (!result)
        throw new HttpError(
          404,
          "not_found_error",
          `job ${id} has no result (it is ${job.status})`,
        );
      if (result.kind === "json") return sendJson(res, 200, result.value);
      const stream = await openResult(c.resultsDir, id).catch(() => {
        throw new HttpError(404, "not_found_error", `the result of job ${id} is gone`);
      });
      res.writeHead(200, { "content-type": result.content_type, "content-length": result.bytes });
      pipeline(stream, res, () => undefined);
    }),
    route("POST", "/v1/jobs/:id/cancel", async ({ req, res, member, params: { id } }) => {
      const job = jobOf(c, member, id);
      req.resume();
      if (!c.jobs.cancel(job)) throw conflict(`job ${id} is already ${job.status}`);
      await c.jobs.saved(job);
      sendJson(res, 200, jobView(job, baseUrl(req)));
    }),
    route("POST", "/v1/jobs/:id/retry", async ({ req, res, member, params }) => {
      const job = jobOf(c, member, params.id);
      req.resume();
      await c.jobs.retry(job);
      sendJson(res, 202, jobView(job, baseUrl(req)));
    }),
  ];
}

/** `/v1/batches`, `/v1/batches/:id` and `POST /v1/batches/:id/cancel` (or the hosted `POST /v1/batches/:id`). */
export function batchRoutes(c: JobRouteContext): Route[] {
  const batchOf = (member: string, id: string): BatchRecord => {
    const batch = c.batches.get(member, id);
    if (!batch) throw notFound("batch", id);
    return batch;
  };
  const cancel = async ({ req, res, member, params }: WorkRequest<"id">): Promise<void> => {
    const batch = batchOf(member, params.id);
    req.resume();
    await c.batches.cancel(batch);
    sendJson(res, 200, c.batches.view(batch, true));
  };
  return [
    route("POST", "/v1/batches", async ({ req, res, member }) => {
      const body = await readJson(req, c.maxJsonBytes);
      const { batch, replayed } = await c.batches.submit(member, body, idempotencyKey(req));
      sendJson(res, 202, c.batches.view(batch, true), replayed ? REPLAYED : {});
    }),
    route("GET", "/v1/batches", ({ res, member, url, elsewhere }) => {
      const theirs = new Map(elsewhere?.jobs.map((j) => [j.id, j]));
      const all = [...c.batches.list(member), ...(elsewhere?.batches ?? [])].sort(
        (x, y) => y.seq - x.seq,
      );
      sendJson(
        res,
        200,
        page(all, url, (b) => c.batches.view(b, false, theirs)),
      );
    }),
    route("GET", "/v1/batches/:id", ({ res, member, params }) => {
      sendJson(res, 200, c.batches.view(batchOf(member, params.id), true));
    }),
    route("POST", "/v1/batches/:id", cancel),
    route("POST", "/v1/batches/:id/cancel", cancel),
  ];
}
