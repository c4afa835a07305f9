/**
 * What the rig's page shows, as the status server sends it (the first render in the HTML, then
 * each `status` event of `/events`). Types only: shared by the daemon and the browser code.
 */

export interface RigGpu {
  index: number;
  model: string | null;
  vram_mb: number | null;
  vram_used_mb: number | null;
  utilization_pct: number | null;
  temperature_c: number | null;
  power_w: number | null;
  /** Utilisation samples, oldest first, one per `sample_seconds` (null: not read). */
  utilization_history: (number | null)[];
  /** VRAM used, MiB, on the same clock. */
  vram_history: (number | null)[];
}

export interface RigModel {
  id: string;
  /** Who may use it (`private`, `the club`, `bob, carol`). */
  access: string;
  paused: string | null;
  requests_hour: number;
  errors_hour: number;
  bytes_hour: number;
  tokens_hour: number;
}

/** A service and its load, as the daemon reports it: in `/status` and on the rig's page. */
export interface ServiceState {
  name: string;
  engine: string;
  url: string;
  status: string;
  reason: string;
  in_flight: number;
  queued: number;
  max_concurrent: number;
}

export interface RigService extends ServiceState {
  models: RigModel[];
}

export interface RigJob {
  request_id: string;
  model: string;
  endpoint: string;
  service: string;
  /** The member it is for; null for the rig's owner. */
  member: string | null;
  /** Unix seconds. */
  started: number;
  /** Bytes of the answer sent so far. */
  bytes: number;
  /** Pieces of text streamed so far; null when the answer is not a stream. */
  tokens: number | null;
  /** In [0, 1], or null while the engine has not said. */
  progress: number | null;
  /** What the engine is doing, in a few words (`queued`, `KSampler 12/30`). */
  detail: string | null;
}

export interface RigError {
  time: string;
  kind: string;
  message: string;
  count: number;
}

export interface RigLogLine {
  /** Unix milliseconds. */
  time: number;
  level: string;
  msg: string;
}

/** An engine the daemon runs itself, as the status server's `GET /engines` lists it. */
export interface ManagedEngine {
  name: string;
  state: string;
  models?: (string | { id: string })[];
  vramMiB?: number | null;
  lastUsedAt?: number | string | null;
  reason?: string | null;
}

export interface RigSnapshot {
  name: string;
  version: string;
  /** Unix seconds the daemon started, and the server's clock now. */
  started: number;
  now: number;
  relay: string;
  pause: { paused: string | null; manual: string | null; outside_schedule: boolean };
  tunnels: { state: string; connects: number; since: number | null }[];
  sample_seconds: number;
  gpus: RigGpu[];
  services: RigService[];
  jobs: RigJob[];
  errors: RigError[];
  log: RigLogLine[];
  /** The managed engines; null when the status server has no `GET /engines`. */
  engines?: ManagedEngine[] | null;
}
