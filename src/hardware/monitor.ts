/**
 * `GpuMonitor`: live GPU figures for the heartbeat. Once per interval it runs one query per
 * source that found GPUs (normally exactly one: nvidia-smi, rocm-smi or a few sysfs reads)
 * and caches the result, so building a heartbeat stays synchronous and free.
 */
import { describeError } from "../errors.ts";
import { silentLogger, type Logger } from "../log.ts";
import type { GpuLoad } from "../protocol/index.ts";
import { GPU_SOURCES, sourceContext, type DetectOptions } from "./detect.ts";
import { NO_FIGURES, type Gpu, type GpuSource, type LiveFigures } from "./types.ts";

/** The GPUs to watch, how often, and where the tools are (as for `detectHardware`). */
export interface GpuMonitorOptions extends DetectOptions {
  /** The GPUs `detectHardware` found; only those of a source that can sample are watched. */
  gpus: readonly Gpu[];
  /** Time between samples: the heartbeat interval. */
  intervalMs: number;
  log?: Logger;
}

function load(index: number, f: LiveFigures): GpuLoad {
  return {
    index,
    vram_used_mb: f.vram_used_mb,
    utilization_pct: f.utilization_pct,
    temperature_c: f.temperature_c,
    power_w: f.power_w,
  };
}

/**
 * Samples live figures in the background; `current()` returns the latest ones. A failing
 * query turns the figures to null (stale numbers would mislead the relay) and logs once.
 * @example
 * const monitor = new GpuMonitor({ gpus: report.gpus, intervalMs: 15_000, log });
 * monitor.start();
 * heartbeat.gpus = monitor.current();
 */
export class GpuMonitor {
  readonly #options: GpuMonitorOptions;
  readonly #watched: { source: GpuSource; gpus: Gpu[] }[] = [];
  readonly #latest = new Map<number, GpuLoad>();
  readonly #failing = new Set<string>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<GpuLoad[]> | null = null;

  constructor(options: GpuMonitorOptions) {
    this.#options = options;
    for (const source of GPU_SOURCES) {
      const gpus = options.gpus.filter((g) => g.source === source.name);
      if (!source.sample || gpus.length === 0) continue;
      this.#watched.push({ source, gpus });
      for (const g of gpus) this.#latest.set(g.index, load(g.index, g));
    }
  }

  /** Starts sampling every `intervalMs`; the figures from detection serve until then. */
  start(): void {
    if (this.#timer || this.#watched.length === 0) return;
    this.#timer = setInterval(() => void this.sample(), this.#options.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** The latest figures of every watched GPU, by index. Synchronous and cheap. */
  current(): GpuLoad[] {
    return [...this.#latest.values()].sort((a, b) => a.index - b.index);
  }

  /** Samples now (one query per source); joins a round already running. Never rejects. */
  sample(): Promise<GpuLoad[]> {
    this.#running ??= this.#round().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  async #round(): Promise<GpuLoad[]> {
    const ctx = sourceContext(this.#options);
    const log = this.#options.log ?? silentLogger;
    await Promise.all(
      this.#watched.map(async ({ source, gpus }) => {
        try {
          const samples = await (source.sample?.(ctx) ?? Promise.resolve([]));
          const byDevice = new Map(samples.map((s) => [s.device, s]));
          for (const g of gpus)
            this.#latest.set(g.index, load(g.index, byDevice.get(g.device) ?? NO_FIGURES));
          if (this.#failing.delete(source.name))
            log.info(`${source.name}: live GPU figures are back`);
        } catch (err) {
          for (const g of gpus) this.#latest.set(g.index, load(g.index, NO_FIGURES));
          if (this.#failing.has(source.name)) return;
          this.#failing.add(source.name);
          log.warn(
            { err: describeError(err) },
            `${source.name}: live GPU figures unavailable (${describeError(err)}); heartbeats carry nulls until it answers again`,
          );
        }
      }),
    );
    return this.current();
  }
}
