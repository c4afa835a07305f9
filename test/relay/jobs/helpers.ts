/**
 * An in-process relay for the long-running work tests, with two members, and a small client
 * for its JSON API. Providers are `MediaRig`s: the daemon's tunnel client, over real sockets.
 */
import { expect } from "vitest";
import { silentLogger } from "../../../src/log.ts";
import { KeyRing } from "../../../src/relay/keys.ts";
import type { JobLimits } from "../../../src/relay/jobs/types.ts";
import type { MediaLimits } from "../../../src/relay/media/types.ts";
import { createRelay, type Relay } from "../../../src/relay/server.ts";
import { MediaRig, type MediaRigOptions } from "./media-rig.ts";

export const ALICE = "sk-alice-jobs-0123456789";
export const BOB = "sk-bob-jobs-0123456789";

/** Limits short enough for tests: quick ticks and backoff, a short wait for providers. */
export const FAST: Partial<JobLimits> = {
  tickMs: 20,
  backoffMs: 20,
  backoffMaxMs: 100,
  noProviderTimeoutMs: 60_000,
};

export function startRelay(
  options: {
    dataDir?: string;
    jobLimits?: Partial<JobLimits>;
    port?: number;
    mediaLimits?: Partial<MediaLimits>;
    /** A `postgres://` URL: jobs kept there (`--database`). */
    database?: string;
    instanceLeaseMs?: number;
  } = {},
): Promise<Relay> {
  return createRelay({
    port: options.port ?? 0,
    keys: new KeyRing({ [ALICE]: "alice", [BOB]: "bob" }),
    log: silentLogger,
    heartbeatMs: 1000,
    jobLimits: { ...FAST, ...options.jobLimits },
    ...(options.dataDir ? { dataDir: options.dataDir } : {}),
    ...(options.mediaLimits ? { mediaLimits: options.mediaLimits } : {}),
    ...(options.database ? { database: options.database } : {}),
    ...(options.instanceLeaseMs ? { instanceLeaseMs: options.instanceLeaseMs } : {}),
  });
}

export async function startRig(
  relay: Relay,
  options: Partial<MediaRigOptions> = {},
): Promise<MediaRig> {
  const rig = new MediaRig({ relayUrl: relay.url, apiKey: ALICE, ...options });
  await rig.start();
  return rig;
}

export interface ErrorView {
  error: { type: string; message: string };
}

export interface JobView {
  id: string;
  object: string;
  status: string;
  endpoint: string;
  model: string;
  attempts: number;
  created: number;
  batch_id?: string;
  workflow_run_id?: string;
  result?: unknown;
  result_url?: string;
  result_content_type?: string;
  result_bytes?: number;
  error?: { type: string; message: string; status?: number };
  last_error?: { type: string; message: string };
}

export interface ListView<T> {
  object: "list";
  data: T[];
  has_more: boolean;
}

export interface BatchView {
  id: string;
  object: string;
  status: string;
  total: number;
  counts: Record<string, number>;
  jobs?: { id: string; custom_id: string | null; status: string }[];
}

export interface StepView {
  step_id: string;
  kind: string;
  status: string;
  jobs: string[];
  output: unknown;
  error: { type: string; message: string } | null;
}

export interface RunView {
  id: string;
  object: string;
  status: string;
  template: string | null;
  models: Record<string, string>;
  error: { type: string; message: string } | null;
  steps: StepView[];
}

export interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** A JSON request to the relay as `key` (alice by default). */
export async function call<T = ErrorView>(
  relay: { url: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  key = ALICE,
): Promise<Answer<T>> {
  const res = await fetch(`${relay.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, headers: res.headers, body: parsed as T };
}

/** Polls a job until its status is `status` (bounded by expect.poll's timeout). */
export async function waitJob(
  relay: { url: string },
  id: string,
  status: string,
  key = ALICE,
): Promise<JobView> {
  const get = async (): Promise<JobView> =>
    (await call<JobView>(relay, "GET", `/v1/jobs/${id}`, undefined, {}, key)).body;
  await expect
    .poll(async () => (await get()).status, { timeout: 15_000, interval: 20 })
    .toBe(status);
  return get();
}

/** Polls a workflow run until its status is `status`. */
export async function waitRun(
  relay: { url: string },
  id: string,
  status: string,
  key = ALICE,
): Promise<RunView> {
  const get = async (): Promise<RunView> =>
    (await call<RunView>(relay, "GET", `/v1/workflows/runs/${id}`, undefined, {}, key)).body;
  await expect
    .poll(async () => (await get()).status, {
      timeout: 15_000,
      interval: 20,
    })
    .toBe(status);
  return get();
}
