/**
 * The public routes of jobs and batches: `"async": true` submissions, `/v1/jobs…` and
 * `/v1/batches…`. Refusals are thrown as `HttpError`s and answered by `work.ts`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream";
import type { Endpoint } from "../../protocol/index.ts";
import type { Batches } from "./batches.ts";
import { REPLAYED, allow, baseUrl, idempotencyKey, page, readJson, statusFilter } from "./http.ts";
import type { JobSystem } from "./jobs.ts";
import { jobRequest } from "./request.ts";
import { openResult } from "./results.ts";
import { makeRoom } from "./retention.ts";
import { JOB_STATUSES, isTerminal, type JobLimits } from "./types.ts";
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

/** One request to the work API: the member it is for and the path segments after its area. */
export interface WorkRequest {
  req: IncomingMessage;
  res: ServerResponse;
  member: string;
  url: URL;
  /** Decoded segments after `/v1/jobs`, `/v1/batches` or `/v1/workflows`. */
  parts: string[];
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

/** `/v1/jobs`, `/v1/jobs/<id>`, `/v1/jobs/<id>/result`, `…/cancel`, `…/retry`. */
export async function jobRoutes(c: JobRouteContext, r: WorkRequest): Promise<void> {
  const { req, res, member, url, parts } = r;
  const base = baseUrl(req);
  const [id, action, ...rest] = parts;
  if (id === undefined) {
    allow(req, "GET", url.pathname);
    const status = statusFilter(url, JOB_STATUSES);
    const active = ["1", "true"].includes(url.searchParams.get("active") ?? "");
    const mine = [...c.jobs.ofMember(member)]
      .filter(
        (j) => (status === undefined || j.status === status) && (!active || !isTerminal(j.status)),
      )
      .reverse();
    return sendJson(
      res,
      200,
      page(mine, url, (j) => jobView(j, base)),
    );
  }
  const job = c.jobs.get(member, id);
  if (job === undefined || rest.length > 0) throw notFound("job", id);
  if (action === undefined) {
    allow(req, "GET", url.pathname);
    return sendJson(res, 200, jobView(job, base));
  }
  if (action === "result") {
    allow(req, "GET", url.pathname);
    const result = job.result;
    if (!result)
      throw new HttpError(404, "not_found_error", `job ${id} has no result (it is ${job.status})`);
    if (result.kind === "json") return sendJson(res, 200, result.value);
    const stream = await openResult(c.resultsDir, id).catch(() => {
      throw new HttpError(404, "not_found_error", `the result of job ${id} is gone`);
    });
    res.writeHead(200, { "content-type": result.content_type, "content-length": result.bytes });
    pipeline(stream, res, () => undefined);
    return;
  }
  allow(req, "POST", url.pathname);
  req.resume();
  if (action === "cancel") {
    if (!c.jobs.cancel(job)) throw conflict(`job ${id} is already ${job.status}`);
    await c.jobs.saved(job);
    return sendJson(res, 200, jobView(job, base));
  }
  if (action === "retry") {
    await c.jobs.retry(job);
    return sendJson(res, 202, jobView(job, base));
  }
  throw notFound("job route", `${id}/${action}`);
}

/** `/v1/batches`, `/v1/batches/<id>`, `/v1/batches/<id>/cancel` (and the hosted `POST /v1/batches/<id>`). */
export async function batchRoutes(c: JobRouteContext, r: WorkRequest): Promise<void> {
  const { req, res, member, url, parts } = r;
  const [id, action, ...rest] = parts;
  if (id === undefined && req.method === "POST") {
    const body = await readJson(req, c.maxJsonBytes);
    const { batch, replayed } = await c.batches.submit(member, body, idempotencyKey(req));
    return sendJson(res, 202, c.batches.view(batch, true), replayed ? REPLAYED : {});
  }
  if (id === undefined) {
    allow(req, "GET", url.pathname);
    return sendJson(
      res,
      200,
      page(c.batches.list(member), url, (b) => c.batches.view(b, false)),
    );
  }
  const batch = c.batches.get(member, id);
  if (!batch || rest.length > 0 || (action !== undefined && action !== "cancel"))
    throw notFound("batch", id);
  if (action === undefined && req.method === "GET")
    return sendJson(res, 200, c.batches.view(batch, true));
  allow(req, "POST", url.pathname);
  req.resume();
  await c.batches.cancel(batch);
  sendJson(res, 200, c.batches.view(batch, true));
}
