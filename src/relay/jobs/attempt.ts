/**
 * One attempt at a job: its request goes through the provider's tunnel exactly as a synchronous
 * one does (`forward`), but the answer lands in a file. The outcome says whether the job is
 * done, failed for good, or worth another attempt.
 */
import type { Logger } from "../../log.ts";
import { describeError } from "../../errors.ts";
import { forward } from "../forward.ts";
import type { ProviderState } from "../provider-state.ts";
import type { UsageSink } from "../usage-meter.ts";
import { ResultSink, closed } from "./result-sink.ts";
import { commitResult, dropResult, readPartHead, readPartJson, resultPaths } from "./results.ts";
import type { JobError, JobLimits, JobRecord, JobResult } from "./types.ts";
import { newId } from "./ids.ts";

/** How an attempt ended: the result, a failure (worth retrying or not), or an abort. */
export type Outcome =
  | { kind: "done"; result: JobResult }
  | { kind: "failed"; retry: boolean; error: JobError }
  /** Stopped by `abort`: the caller already decided what becomes of the job. */
  | { kind: "aborted" };

/** One attempt under way. */
export interface Attempt {
  readonly requestId: string;
  done: Promise<Outcome>;
  /** Cancels the HTTP/2 stream (the daemon aborts the engine call) and discards the answer. */
  abort(): void;
}

/** What an attempt needs: the job, the provider, where results go, and the bounds. */
export interface AttemptOptions {
  job: JobRecord;
  /** The request body, being read from the store; undefined when it is not there. */
  body: Promise<Buffer | undefined>;
  link: ProviderState;
  resultsDir: string;
  limits: Pick<JobLimits, "maxResultBytes" | "inlineResultBytes" | "attemptTimeoutMs">;
  log: Logger;
  /** Where the answer's usage is booked. */
  usage?: UsageSink;
  /** Keeps a committed byte result beyond this instance (a club's shared tables). */
  keepResult?: (jobId: string, path: string) => Promise<void>;
}

const isJson = (type: string): boolean => type === "application/json" || type.endsWith("+json");

/** The provider's error message and type from an error body (the club's envelope or not). */
function errorOf(
  head: string,
  status: number,
  provider: string,
): { type?: string; message: string } {
  let body: unknown;
  try {
    body = JSON.parse(head);
  } catch {
    const text = head.trim().slice(0, 500);
    return { message: text || `provider ${provider} answered ${status}` };
  }
  const error = (body as { error?: unknown; detail?: unknown } | null)?.error;
  if (typeof error === "object" && error !== null) {
    const { message, type } = error as { message?: unknown; type?: unknown };
    return {
      ...(typeof type === "string" ? { type } : {}),
      message: typeof message === "string" ? message : JSON.stringify(error),
    };
  }
  return { message: typeof error === "string" ? error : head.trim().slice(0, 500) };
}

async function settle(o: AttemptOptions, sink: ResultSink): Promise<Outcome> {
  const { job, link, resultsDir: dir } = o;
  if (!sink.writableFinished) {
    await dropResult(dir, job.id);
    const f = sink.failure;
    if (f?.code === "result_too_large")
      return {
        kind: "failed",
        retry: false,
        error: { type: "result_too_large", message: f.message },
      };
    const why =
      f?.code === "attempt_timeout" ? f.message : `provider ${link.name} broke off the answer`;
    return { kind: "failed", retry: true, error: { type: "upstream_error", message: why } };
  }
  const { status, contentType, bytes } = sink;
  if (status >= 200 && status < 300) {
    if (isJson(contentType) && bytes <= o.limits.inlineResultBytes) {
      const parsed = await readPartJson(dir, job.id);
      if (parsed) {
        await dropResult(dir, job.id);
        const result = {
          kind: "json",
          value: parsed.value,
          content_type: contentType,
          bytes,
        } as const;
        return { kind: "done", result };
      }
    }
    await commitResult(dir, job.id);
    if (o.keepResult)
      try {
        await o.keepResult(job.id, resultPaths(dir, job.id).final);
      } catch (err) {
        await dropResult(dir, job.id);
        const message = `the result could not be stored (${describeError(err)})`;
        return { kind: "failed", retry: true, error: { type: "server_error", message } };
      }
    return { kind: "done", result: { kind: "file", content_type: contentType, bytes } };
  }
  const head = await readPartHead(dir, job.id);
  await dropResult(dir, job.id);
  const { type, message } = errorOf(head, status, link.name);
  // Like the hosted club: a 4xx other than 429 is the request's fault and will not get better.
  const retry = status === 429 || status >= 500;
  return { kind: "failed", retry, error: { type: type ?? "upstream_error", message, status } };
}

/**
 * Starts one attempt of `job` on `link`.
 * @example
 * const attempt = startAttempt({ job, link, resultsDir, limits, log });
 * const outcome = await attempt.done;
 */
export function startAttempt(o: AttemptOptions): Attempt {
  const { job, link } = o;
  const requestId = newId("req");
  const sink = new ResultSink(resultPaths(o.resultsDir, job.id).part, o.limits.maxResultBytes);
  const state = { aborted: false };
  // Read through a call: TypeScript would keep `state.aborted` narrowed across the awaits.
  const aborted = (): boolean => state.aborted;
  const ms = o.limits.attemptTimeoutMs;
  const timer = setTimeout(
    () => sink.abort("attempt_timeout", `provider ${link.name} took longer than ${ms} ms`),
    ms,
  );
  timer.unref();
  const done = (async (): Promise<Outcome> => {
    const body = await o.body;
    if (aborted()) {
      clearTimeout(timer);
      await closed(sink);
      await dropResult(o.resultsDir, job.id);
      return { kind: "aborted" };
    }
    if (body === undefined) {
      clearTimeout(timer);
      sink.destroy();
      await closed(sink);
      await dropResult(o.resultsDir, job.id);
      const message = `the request body of job ${job.id} is no longer stored: submit the request again`;
      return { kind: "failed", retry: false, error: { type: "body_missing", message } };
    }
    await forward({
      link,
      method: "POST",
      path: job.endpoint,
      headers: { "content-type": "application/json" },
      body,
      model: job.model,
      member: job.member,
      requestId,
      res: sink,
      log: o.log,
      ...(o.usage ? { usage: { sink: o.usage, endpoint: job.endpoint } } : {}),
    });
    await closed(sink);
    clearTimeout(timer);
    if (!aborted()) return settle(o, sink);
    await dropResult(o.resultsDir, job.id);
    return { kind: "aborted" };
  })();
  return {
    requestId,
    done,
    abort() {
      state.aborted = true;
      sink.abort("canceled", "the job was canceled");
    },
  };
}
