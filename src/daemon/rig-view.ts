/**
 * What the rig's page shows (`RigSnapshot`), built from the daemon's own state: the tunnels,
 * each GPU with a short history for its sparkline, each engine with its models and their last
 * hour, the requests running now, the last errors and the log tail.
 */
import type { Manifest } from "../protocol/index.ts";
import { describeAccess } from "../protocol/index.ts";
import type { GpuLoad } from "../protocol/index.ts";
import type { Gpu } from "../hardware/index.ts";
import type { JobStatus } from "../gateway/progress.ts";
import type { RigSnapshot, ServiceState } from "../ui/browser/rig-types.ts";
import type { HourUsage } from "./hour-usage.ts";
import type { LogRing } from "./log-ring.ts";
import type { PauseView } from "./pause.ts";
import type { RecentError } from "./recent-errors.ts";

/** Samples kept per GPU: an hour at 60 s, fifteen minutes at the default 15 s heartbeat. */
export const GPU_HISTORY = 60;
/** Log lines sent with each snapshot (the ring keeps more for `/events` catch-up). */
const LOG_LINES = 50;

/** What the view reads from the daemon. */
export interface RigViewSource {
  readonly name: string;
  readonly version: string;
  readonly started: number;
  readonly relay: string;
  pause(): PauseView;
  tunnels(): { state: string; connects: number; since: number | null }[];
  gpus(): Gpu[];
  gpuLoad(): GpuLoad[];
  manifest(): Manifest;
  services(): ServiceState[];
  jobs(): JobStatus[];
  errors(): RecentError[];
  readonly hourUsage: HourUsage;
  readonly logTail?: LogRing | undefined;
}

/**
 * The view, with the GPU history it samples on its own clock.
 * @example
 * const view = new RigView(source, 15_000);
 * view.start(); view.snapshot(); view.stop();
 */
export class RigView {
  readonly #history = new Map<number, { util: (number | null)[]; vram: (number | null)[] }>();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    readonly source: RigViewSource,
    readonly sampleMs: number,
  ) {}

  start(): void {
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.sampleMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Records the GPUs' current figures. */
  sample(): void {
    for (const g of this.source.gpuLoad()) {
      const h = this.#history.get(g.index) ?? { util: [], vram: [] };
      this.#history.set(g.index, h);
      h.util.push(g.utilization_pct);
      h.vram.push(g.vram_used_mb);
      if (h.util.length > GPU_HISTORY) h.util.shift();
      if (h.vram.length > GPU_HISTORY) h.vram.shift();
    }
  }

  snapshot(): RigSnapshot {
    const s = this.source;
    const pause = s.pause();
    const load = new Map(s.gpuLoad().map((g) => [g.index, g]));
    const manifestServices = s.manifest().hosts.flatMap((h) => h.services);
    return {
      name: s.name,
      version: s.version,
      started: s.started,
      now: Math.floor(Date.now() / 1000),
      relay: s.relay,
      pause: {
        paused: pause.paused,
        manual: pause.manual,
        outside_schedule: pause.outside_schedule,
      },
      tunnels: s.tunnels(),
      sample_seconds: Math.round(this.sampleMs / 1000),
      gpus: s.gpus().map((g) => {
        const now = load.get(g.index);
        const h = this.#history.get(g.index);
        return {
          index: g.index,
          model: g.model,
          vram_mb: g.vram_mb,
          vram_used_mb: now?.vram_used_mb ?? g.vram_used_mb,
          utilization_pct: now?.utilization_pct ?? g.utilization_pct,
          temperature_c: now?.temperature_c ?? g.temperature_c,
          power_w: now?.power_w ?? g.power_w,
          utilization_history: h ? [...h.util] : [],
          vram_history: h ? [...h.vram] : [],
        };
      }),
      services: s.services().map((svc) => {
        const advertised = manifestServices.find((m) => m.name === svc.name);
        return {
          ...svc,
          models: (advertised?.models ?? []).map((m) => {
            const hour = s.hourUsage.figures(m.id);
            return {
              id: m.id,
              access: describeAccess(m.access ?? advertised?.access),
              paused: pause.paused_models[m.id] ?? null,
              requests_hour: hour.requests,
              errors_hour: hour.errors,
              bytes_hour: hour.bytes,
              tokens_hour: hour.tokens,
            };
          }),
        };
      }),
      jobs: s.jobs(),
      errors: s.errors(),
      log: s.logTail?.list().slice(-LOG_LINES) ?? [],
    };
  }
}
