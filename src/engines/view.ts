/** One managed engine as `GET /engines`, `club-provider engines` and the rig page show it. */
import type { EngineState, Supervisor } from "./supervisor.ts";

/** One engine as `GET /engines` and `club-provider engines` show it. */
export interface EngineView {
  name: string;
  state: EngineState;
  models: string[];
  gpus: number[];
  vramMiB: number | null;
  /** Whether {@link vramMiB} is the owner's figure or one measured on a run; null: unknown. */
  vramSource: "declared" | "measured" | null;
  lastUsedAt: number | null;
  inFlight: number;
  starts: number;
  failures: number;
  stops: Record<string, number>;
  withdrawn: boolean;
  pid: number | null;
  /** Seconds the last cold start took; null before the first. */
  coldStartSeconds: number | null;
  reason?: string;
}

/** The view of one engine now. */
export function viewOf(e: Supervisor): EngineView {
  return {
    name: e.name,
    state: e.state,
    models: e.models.map((m) => m.id),
    gpus: e.spec.gpus,
    vramMiB: e.vramMiB ?? null,
    vramSource: e.vramSource ?? null,
    lastUsedAt: e.lastUsedAt,
    inFlight: e.inFlight,
    starts: e.starts,
    failures: e.failures,
    stops: { ...e.stops },
    withdrawn: e.withdrawn,
    pid: e.pid,
    coldStartSeconds: e.coldStarts.at(-1) ?? null,
    ...(e.reason !== undefined ? { reason: e.reason } : {}),
  };
}
