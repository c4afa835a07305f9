/**
 * The public routes of workflows: `/v1/workflows/templates` and `/v1/workflows/runs…`, with
 * `…/cancel` and the gate decisions `…/steps/<step_id>/approve` and `…/reject` (optional JSON
 * body `{"note": "…"}`).
 */
import { REPLAYED, baseUrl, idempotencyKey, page, readJson, statusFilter } from "../jobs/http.ts";
import { route, type Route, type WorkRequest } from "../jobs/route-table.ts";
import { notFound } from "../jobs/work-error.ts";
import { HttpError } from "../../http/error.ts";
import { sendJson } from "../../http/respond.ts";
import type { Workflows } from "./runs.ts";
import { TEMPLATES } from "./catalog.ts";
import { templateView } from "./templates.ts";
import { RUN_STATUSES, type RunRecord } from "./types.ts";
import { runView } from "./view.ts";

/** Decision bodies are small: a note at most. */
const DECISION_BYTES = 64 * 1024;

/** The routes under `/v1/workflows`. */
export function workflowRoutes(workflows: Workflows, maxJsonBytes: number): Route[] {
  const runOf = (member: string, id: string): RunRecord => {
    const run = workflows.get(member, id);
    if (!run) throw notFound("workflow run", id);
    return run;
  };
  const decide =
    (approve: boolean) =>
    async ({ req, res, member, params }: WorkRequest<"id" | "step">): Promise<void> => {
      const run = runOf(member, params.id);
      const { note } = await readJson(req, DECISION_BYTES);
      if (note !== undefined && typeof note !== "string")
        throw new HttpError(400, "invalid_request_error", '"note" must be text');
      await workflows.decide(run, params.step, approve, note);
      sendJson(res, 200, runView(run, baseUrl(req)));
    };
  return [
    route("GET", "/v1/workflows/templates", ({ res }) => {
      sendJson(res, 200, { object: "list", data: TEMPLATES.map(templateView) });
    }),
    route("POST", "/v1/workflows/runs", async ({ req, res, member }) => {
      const body = await readJson(req, maxJsonBytes);
      const { run, replayed } = await workflows.submit(member, body, idempotencyKey(req));
      sendJson(res, 202, runView(run, baseUrl(req)), replayed ? REPLAYED : {});
    }),
    route("GET", "/v1/workflows/runs", ({ req, res, member, url, elsewhere }) => {
      const status = statusFilter(url, RUN_STATUSES);
      const runs = [...workflows.list(member), ...(elsewhere?.runs ?? [])]
        .sort((x, y) => y.seq - x.seq)
        .filter((r) => status === undefined || r.status === status);
      const base = baseUrl(req);
      sendJson(
        res,
        200,
        page(runs, url, (r) => runView(r, base)),
      );
    }),
    route("GET", "/v1/workflows/runs/:id", ({ req, res, member, params }) => {
      sendJson(res, 200, runView(runOf(member, params.id), baseUrl(req)));
    }),
    route("POST", "/v1/workflows/runs/:id/cancel", async ({ req, res, member, params }) => {
      const run = runOf(member, params.id);
      req.resume();
      await workflows.cancel(run);
      sendJson(res, 200, runView(run, baseUrl(req)));
    }),
    route("POST", "/v1/workflows/runs/:id/steps/:step/approve", decide(true)),
    route("POST", "/v1/workflows/runs/:id/steps/:step/reject", decide(false)),
  ];
}
