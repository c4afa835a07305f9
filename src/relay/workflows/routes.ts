/**
 * The public routes of workflows: `/v1/workflows/templates` and `/v1/workflows/runs…`, with
 * `…/cancel` and the gate decisions `…/steps/<step_id>/approve` and `…/reject` (optional JSON
 * body `{"note": "…"}`).
 */
import {
  REPLAYED,
  allow,
  baseUrl,
  idempotencyKey,
  page,
  readJson,
  statusFilter,
} from "../jobs/http.ts";
import type { WorkRequest } from "../jobs/routes.ts";
import { notFound } from "../jobs/work-error.ts";
import { HttpError } from "../../http/error.ts";
import { sendJson } from "../../http/respond.ts";
import type { Workflows } from "./runs.ts";
import { TEMPLATES } from "./catalog.ts";
import { templateView } from "./templates.ts";
import { RUN_STATUSES } from "./types.ts";
import { runView } from "./view.ts";

/** Decision bodies are small: a note at most. */
const DECISION_BYTES = 64 * 1024;

/** Answers a request under `/v1/workflows`; `parts` are the path segments after it. */
export async function workflowRoutes(
  workflows: Workflows,
  maxJsonBytes: number,
  r: WorkRequest,
): Promise<void> {
  const { req, res, member, url, parts } = r;
  const base = baseUrl(req);
  const [section, id, action, stepId, decision, ...rest] = parts;
  if (section === "templates" && id === undefined) {
    allow(req, "GET", url.pathname);
    return sendJson(res, 200, { object: "list", data: TEMPLATES.map(templateView) });
  }
  if (section !== "runs") throw notFound("workflow route", url.pathname);
  if (id === undefined && req.method === "POST") {
    const body = await readJson(req, maxJsonBytes);
    const { run, replayed } = await workflows.submit(member, body, idempotencyKey(req));
    return sendJson(res, 202, runView(run, base), replayed ? REPLAYED : {});
  }
  if (id === undefined) {
    allow(req, "GET", url.pathname);
    const status = statusFilter(url, RUN_STATUSES);
    const runs = workflows.list(member).filter((r) => status === undefined || r.status === status);
    return sendJson(
      res,
      200,
      page(runs, url, (r) => runView(r, base)),
    );
  }
  const run = workflows.get(member, id);
  if (!run || rest.length > 0) throw notFound("workflow run", id);
  if (action === undefined) {
    allow(req, "GET", url.pathname);
    return sendJson(res, 200, runView(run, base));
  }
  allow(req, "POST", url.pathname);
  if (action === "cancel" && stepId === undefined) {
    req.resume();
    await workflows.cancel(run);
    return sendJson(res, 200, runView(run, base));
  }
  if (
    action !== "steps" ||
    stepId === undefined ||
    (decision !== "approve" && decision !== "reject")
  )
    throw notFound("workflow route", url.pathname);
  const { note } = await readJson(req, DECISION_BYTES);
  if (note !== undefined && typeof note !== "string")
    throw new HttpError(400, "invalid_request_error", '"note" must be text');
  await workflows.decide(run, stepId, decision === "approve", note);
  sendJson(res, 200, runView(run, base));
}
