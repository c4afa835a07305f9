/**
 * The relay's long-running work as it is stored: async jobs, batches of jobs, and the limits
 * that bound them. Times are epoch milliseconds here; the public views turn them into seconds.
 */

/** A job's life: queued, running at a provider, then one of the three terminal states. */
export type JobStatus = "QUEUED" | "PROCESSING" | "PROCESSED" | "FAILED" | "CANCELED";

/** Every job status, in life order (for `?status=` and batch counts). */
export const JOB_STATUSES: readonly JobStatus[] = [
  "QUEUED",
  "PROCESSING",
  "PROCESSED",
  "FAILED",
  "CANCELED",
];

/** States a job never leaves on its own (only `retry` re-queues it). */
export function isTerminal(status: JobStatus): boolean {
  return status === "PROCESSED" || status === "FAILED" || status === "CANCELED";
}

/** Why a job failed, in the club's error vocabulary (`no_provider`, `upstream_error`, …). */
export interface JobError {
  type: string;
  message: string;
  /** The provider's HTTP status, when it answered with an error. */
  status?: number;
}

/** A finished job's answer: parsed JSON kept in the record, or bytes in a file of the store. */
export type JobResult =
  | { kind: "json"; value: unknown; content_type: string; bytes: number }
  | { kind: "file"; content_type: string; bytes: number };

/** Anything the store keeps: a job, a batch or a workflow run, told apart by `kind`. */
export interface StoredRecord {
  kind: string;
  id: string;
  /** Submission order across the relay; lists sort on it. */
  seq: number;
  member: string;
  created: number;
  idempotency_key?: string;
}

/** One async job: a request for a provider, its state, and in the end its result or error. */
export interface JobRecord extends StoredRecord {
  kind: "job";
  /** Public path of the endpoint, e.g. `/v1/chat/completions`. */
  endpoint: string;
  model: string;
  /**
   * Size of the body sent to the provider (club fields stripped, `stream` off). The body itself
   * is not in the record: the store keeps it apart, written once at submission (`JobStore.body`).
   */
  body_bytes: number;
  /** Set once the store let the body go: at PROCESSED, or when FAILED bodies passed their quota. */
  body_dropped?: boolean;
  status: JobStatus;
  /** Last time it entered the queue. */
  queued: number;
  started?: number;
  finished?: number;
  /** Attempts made since submission or the last retry. */
  attempts: number;
  /** Not to be dispatched before this time (retry backoff). */
  not_before?: number;
  provider?: string;
  request_id?: string;
  error?: JobError;
  result?: JobResult;
  batch_id?: string;
  run_id?: string;
}

/** A batch: the jobs of one submission, in request order. */
export interface BatchRecord extends StoredRecord {
  kind: "batch";
  jobs: string[];
  /** The caller's `custom_id` of each request, in order (null when none was given). */
  custom_ids: (string | null)[];
  canceled?: number;
}

/** Every bound on the relay's long-running work; `createWork` fills in the defaults. */
export interface JobLimits {
  /** Queued plus running jobs one member may have (a full batch must fit). */
  maxActivePerMember: number;
  /** Jobs kept per member, finished ones included; the oldest finished are dropped first. */
  maxStoredPerMember: number;
  /** Bytes kept per member (request bodies not yet dropped plus results); as above beyond it. */
  maxStoredBytesPerMember: number;
  /**
   * Request bodies of FAILED and CANCELED jobs kept per member so `retry` works; beyond it the
   * oldest are dropped and retrying those jobs answers 409.
   */
  maxRetainedBodyBytesPerMember: number;
  /** Most store writes one transaction (one fsync) takes; 1 turns group commits off. */
  maxWritesPerCommit: number;
  /** Jobs running at once across the relay, and per member. */
  maxRunning: number;
  maxRunningPerMember: number;
  /** Attempts before a job that keeps failing at the provider is FAILED. */
  maxAttempts: number;
  /** Retry backoff: `backoffMs · 2^(attempt-1)`, at most `backoffMaxMs`. */
  backoffMs: number;
  backoffMaxMs: number;
  /** How long a job waits for a provider that serves its model before failing `no_provider`. */
  noProviderTimeoutMs: number;
  /** How long one attempt may take before it is cut off and retried. */
  attemptTimeoutMs: number;
  /** Largest request body a job may carry, and all the requests of one workflow step together. */
  maxBodyBytes: number;
  /** Largest a workflow run may grow: its inputs and its steps' outputs, as JSON. */
  maxRunBytes: number;
  /** Workflow runs kept per member, finished ones included; the oldest finished are dropped first. */
  maxStoredRunsPerMember: number;
  /** Bytes of workflow runs kept per member (`maxRunBytes` each at most); as above beyond it. */
  maxStoredRunBytesPerMember: number;
  /** Largest result kept; a bigger answer fails the job (`result_too_large`). */
  maxResultBytes: number;
  /** JSON results up to this size are shown inline; bigger ones only through `result_url`. */
  inlineResultBytes: number;
  /** Finished jobs, batches and runs are deleted this long after they finish. */
  retainMs: number;
  /** How often the queue is looked at without an event (backoff, new providers, timeouts). */
  tickMs: number;
  /** Usage rows (`GET /v1/usage`) are deleted this many days after their UTC day. */
  usageRetainDays: number;
  /** How often counted usage is written to the store (and always on close). */
  usageFlushMs: number;
}

/** The bounds a relay uses unless told otherwise (see docs/jobs.md). */
export const DEFAULT_LIMITS: JobLimits = {
  maxActivePerMember: 1024,
  maxStoredPerMember: 10_000,
  maxStoredBytesPerMember: 16 * 1024 * 1024 * 1024,
  maxRetainedBodyBytesPerMember: 256 * 1024 * 1024,
  maxWritesPerCommit: 1024,
  maxRunning: 256,
  maxRunningPerMember: 64,
  maxAttempts: 3,
  backoffMs: 5_000,
  backoffMaxMs: 300_000,
  noProviderTimeoutMs: 600_000,
  attemptTimeoutMs: 3_600_000,
  maxBodyBytes: 8 * 1024 * 1024,
  maxRunBytes: 4 * 1024 * 1024,
  maxStoredRunsPerMember: 1_000,
  maxStoredRunBytesPerMember: 256 * 1024 * 1024,
  maxResultBytes: 1024 * 1024 * 1024,
  inlineResultBytes: 1024 * 1024,
  retainMs: 7 * 24 * 3_600_000,
  tickMs: 1_000,
  usageRetainDays: 400,
  usageFlushMs: 5_000,
};

/** Batches take at most this many requests (the club's documented limit). */
export const MAX_BATCH = 256;

/** `?limit=` of the list endpoints: its default and its ceiling. */
export const LIST_DEFAULT = 20;
export const LIST_MAX = 100;
