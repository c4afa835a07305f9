/**
 * The daemon's managed engines: one supervisor each, the VRAM budget between them, the services
 * the catalog advertises for them (while stopped, too), and what `/engines` reports.
 */
import { EventEmitter } from "node:events";
import type { Adapter } from "../../adapters/adapter.ts";
import { findAdapter } from "../../adapters/index.ts";
import type { Service } from "../discovery/catalog.ts";
import { UserError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { MANIFEST_ENGINES, type ManifestEngine } from "../protocol/manifest.ts";
import type { EngineSettings, EngineSpec } from "./schema.ts";
import { Supervisor, type EngineLease, type EngineState } from "./supervisor.ts";
import { VramBudget } from "./vram.ts";
import { learnVram } from "./vram-learn.ts";
import type { VramMeter } from "./vram-meter.ts";
import type { VramStore } from "./vram-store.ts";

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

export interface EngineManagerOptions {
  specs: readonly EngineSpec[];
  settings: EngineSettings;
  log: Logger;
  /** Detected VRAM of a GPU in MiB (null: unknown). */
  gpuTotal?: (gpu: number) => number | null;
  baseEnv?: NodeJS.ProcessEnv;
  /** Measures the VRAM of engines that declare none (nvidia-smi, rocm-smi); none: not measured. */
  meter?: VramMeter;
  /** Remembered measurements (loaded), read at construction and written on each new figure. */
  vramStore?: VramStore;
  /** Least time between two measurements of one engine (default 30 s). */
  remeasureMs?: number;
}

/** Events: `change` (an engine's state changed: the manifest may have). */
export class EngineManager extends EventEmitter {
  readonly engines: Supervisor[] = [];
  readonly settings: EngineSettings;
  readonly vram: VramBudget;
  /** Engines stopped to make room for another, by the evicted engine's name. */
  readonly evictions = new Map<string, number>();
  /** One Service object per engine, kept: the gateway holds it across the engine's start. */
  readonly #services = new Map<Supervisor, Service>();

  constructor(options: EngineManagerOptions) {
    super();
    this.settings = options.settings;
    this.vram = new VramBudget({
      settings: options.settings,
      total: options.gpuTotal ?? (() => null),
      engines: () => this.engines,
      onEvict: (victim, forEngine) => {
        this.evictions.set(victim.name, (this.evictions.get(victim.name) ?? 0) + 1);
        options.log.info({ engine: victim.name, for: forEngine.name }, "engine evicted");
      },
    });
    for (const spec of options.specs) {
      const adapter: Adapter | undefined = findAdapter(spec.adapter);
      if (!adapter)
        throw new UserError(
          "engine_adapter_unknown",
          `engine ${spec.name}: unknown adapter ${JSON.stringify(spec.adapter)} (llamacpp, vllm, whispercpp, kokoro, comfyui, openai, …)`,
        );
      const engine = new Supervisor({
        spec,
        adapter,
        settings: options.settings,
        log: options.log.child({ engine: spec.name }),
        makeRoom: (e) => this.vram.makeRoom(e),
        ...(options.baseEnv ? { baseEnv: options.baseEnv } : {}),
      });
      if (options.meter)
        learnVram(engine, {
          meter: options.meter,
          store: options.vramStore,
          log: options.log,
          ...(options.remeasureMs !== undefined ? { everyMs: options.remeasureMs } : {}),
        });
      engine.on("change", () => this.emit("change", engine));
      this.engines.push(engine);
      this.#services.set(engine, this.#service(engine));
    }
  }

  get(name: string): Supervisor | undefined {
    return this.engines.find((e) => e.name === name);
  }

  #service(engine: Supervisor): Service {
    const known = (MANIFEST_ENGINES as readonly string[]).includes(engine.adapter.name);
    return {
      name: engine.name,
      adapter: engine.adapter,
      upstream: engine.upstream,
      info: {
        engine: (known ? engine.adapter.name : "other") as ManifestEngine,
        label: `${engine.adapter.displayName} (managed)`,
        maxConcurrent: null,
        models: engine.models,
      },
      status: "ready",
      reason: "managed: started on demand",
      maxConcurrent: engine.spec.maxConcurrent ?? 1,
    };
  }

  /**
   * The services of the managed engines, as the catalog lists them: advertised while stopped;
   * an engine that keeps failing is `down` (withdrawn) with the reason.
   */
  services(): Service[] {
    return [...this.#services].map(([engine, s]) => {
      if (s.info) s.info.models = engine.models;
      s.maxConcurrent = engine.spec.maxConcurrent ?? engine.reportedConcurrency ?? 1;
      s.status = engine.withdrawn ? "down" : "ready";
      s.engineState = engine.state;
      s.reason = engine.withdrawn
        ? `withdrawn after ${engine.streak} failures: ${engine.reason ?? ""}`
        : `managed, ${engine.state}`;
      return s;
    });
  }

  /** The state of the engine serving a service, for the manifest. */
  state(serviceName: string): EngineState | undefined {
    return this.get(serviceName)?.state;
  }

  /** Leases the engine behind a service, starting it; undefined for a service not managed. */
  acquire(serviceName: string, signal: AbortSignal): Promise<EngineLease> | undefined {
    return this.get(serviceName)?.acquire(signal, this.settings.waitMs);
  }

  list(): EngineView[] {
    return this.engines.map((e) => ({
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
    }));
  }

  /** What the status server's `/engines` endpoints call (`EngineControl`). */
  control() {
    const view = (name: string) => this.list().find((e) => e.name === name);
    return {
      list: () => this.list(),
      start: (name: string) => {
        const engine = this.get(name);
        if (!engine) return undefined;
        // The start goes on after the answer; a failure is in the engine's state and reason.
        engine.start().catch(() => {});
        return view(name);
      },
      stop: async (name: string) => {
        const engine = this.get(name);
        if (!engine) return undefined;
        await engine.stop("owner");
        return view(name);
      },
      logs: (name: string) => this.get(name)?.logs.lines(),
    };
  }

  /** Stops every engine (the daemon is stopping). */
  async stopAll(): Promise<void> {
    await Promise.all(this.engines.map((e) => e.stop("shutdown")));
  }
}
