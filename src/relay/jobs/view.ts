/** Jobs as the public API shows them: `object: "inference.job"`, times in epoch seconds. */
import { findEndpoint } from "../../protocol/index.ts";
import { isTerminal, type JobRecord } from "./types.ts";

/** Epoch seconds, or null for a time that has not come. */
export const seconds = (ms: number | undefined): number | null =>
  ms === undefined ? null : Math.floor(ms / 1000);

/** Where a job's result can be fetched, e.g. `http://relay:8787/v1/jobs/job_…/result`. */
export const resultUrl = (base: string, id: string): string => `${base}/v1/jobs/${id}/result`;

/**
 * The job's public shape. JSON results are inline as `result`; every result is also at
 * `result_url` (byte results only there). `error` is why a job FAILED; a queued job that is
 * being retried shows the last attempt's failure as `last_error`.
 * @example
 * jobView(job, "http://127.0.0.1:8787")
 * // { id: "job_…", object: "inference.job", status: "PROCESSED", model: "qwen3-8b", result: {…}, … }
 */
export function jobView(job: JobRecord, base: string): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: job.id,
    object: "inference.job",
    status: job.status,
    endpoint: job.endpoint,
    inference_type: findEndpoint("POST", job.endpoint)?.serviceType ?? null,
    model: job.model,
    created: seconds(job.created),
    queued_at: seconds(job.queued),
    started_at: seconds(job.started),
    finished_at: seconds(job.finished),
    attempts: job.attempts,
  };
  if (job.batch_id) view.batch_id = job.batch_id;
  if (job.run_id) view.workflow_run_id = job.run_id;
  if (job.idempotency_key) view.idempotency_key = job.idempotency_key;
  if (job.error) view[isTerminal(job.status) ? "error" : "last_error"] = job.error;
  if (job.result) {
    if (job.result.kind === "json") view.result = job.result.value;
    view.result_url = resultUrl(base, job.id);
    view.result_content_type = job.result.content_type;
    view.result_bytes = job.result.bytes;
  }
  return view;
}
