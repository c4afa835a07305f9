/** Checking one request that is to run as a job: an async endpoint, a body, a model, a size. */
import { ENDPOINTS, findEndpoint, stripClubFields, type Endpoint } from "../../protocol/index.ts";
import { newId, nextSeq } from "./ids.ts";
import type { JobRecord } from "./types.ts";

/** A request ready to queue: the body is what the provider will see, serialized once. */
export interface JobRequest {
  endpoint: Endpoint;
  model: string;
  body: Buffer;
}

/** The endpoints that take `"async": true`, for messages. */
export const ASYNC_PATHS = ENDPOINTS.filter((e) => e.async).map((e) => e.path);

/**
 * The job for `body` sent to `path` (`/v1/chat/completions` or `chat/completions`), or a
 * sentence saying what is wrong with it. Club fields are stripped and LLM output is not streamed
 * (a job's answer is stored whole, as the hosted club does).
 */
export function jobRequest(
  path: unknown,
  body: unknown,
  maxBodyBytes: number,
): JobRequest | string {
  if (typeof path !== "string" || path === "") return '"endpoint" must be a string';
  const full = path.startsWith("/v1/") ? path : `/v1/${path.replace(/^\/+/, "")}`;
  const endpoint = findEndpoint("POST", full);
  if (!endpoint?.async) return `${full} cannot run as a job; these can: ${ASYNC_PATHS.join(", ")}`;
  if (typeof body !== "object" || body === null || Array.isArray(body))
    return '"body" must be a JSON object';
  const json = body as Record<string, unknown>;
  if (typeof json.model !== "string" || json.model === "")
    return `"model" is required on ${endpoint.path}`;
  const size = Buffer.byteLength(JSON.stringify(json));
  if (size > maxBodyBytes)
    return `the request body is ${size} bytes; a job takes at most ${maxBodyBytes}`;
  let stripped = stripClubFields(json);
  if (endpoint.serviceType === "llm") {
    const { stream: _stream, stream_options: _options, ...rest } = stripped;
    stripped = rest;
  }
  return { endpoint, model: json.model, body: Buffer.from(JSON.stringify(stripped)) };
}

/** Where a job comes from, besides its request. */
export interface JobOrigin {
  idempotencyKey?: string;
  batchId?: string;
  runId?: string;
}

/** A new QUEUED job for a checked request. */
export function newJob(member: string, r: JobRequest, origin: JobOrigin): JobRecord {
  const now = Date.now();
  return {
    kind: "job",
    id: newId("job"),
    seq: nextSeq(),
    member,
    created: now,
    endpoint: r.endpoint.path,
    model: r.model,
    body_bytes: r.body.length,
    status: "QUEUED",
    queued: now,
    attempts: 0,
    ...(origin.idempotencyKey === undefined ? {} : { idempotency_key: origin.idempotencyKey }),
    ...(origin.batchId === undefined ? {} : { batch_id: origin.batchId }),
    ...(origin.runId === undefined ? {} : { run_id: origin.runId }),
  };
}
