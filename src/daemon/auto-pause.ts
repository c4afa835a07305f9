/**
 * The pause timer of the daemon: every `autoPause.pollMs` it reads the schedule again and asks
 * the GPU tools who uses the GPUs, sets the models paused alone, and reports a change at once.
 */
import { basename } from "node:path";
import type { Logger } from "../log.ts";
import type { AutoPauseConfig } from "../config.ts";
import type { Catalog } from "../discovery/catalog.ts";
import { isLoopbackHost } from "../gateway/address.ts";
import type { Gpu } from "../hardware/types.ts";
import { listGpuProcesses, type GpuProcessReport } from "../hardware/gpu-processes.ts";
import type { ToolOptions } from "../process/run-tool.ts";
import { findEngine } from "./engine-pids.ts";
import { GpuUsers, type PausableService } from "./gpu-users.ts";
import type { PauseState } from "./pause.ts";

export interface AutoPauseOptions {
  settings: () => AutoPauseConfig;
  catalog: () => Catalog;
  gpus: () => Gpu[];
  state: PauseState;
  log: Logger;
  /** The pause fields changed (the daemon sends a heartbeat now). */
  onChange: () => void;
  /** Environment the GPU tools run with (tests put fakes on its PATH). */
  env?: NodeJS.ProcessEnv;
  /** Where `/proc` is (tests). */
  proc?: string;
  now?: () => number;
}

/** How long one GPU tool may take before this poll goes without it. */
const TOOL_TIMEOUT_MS = 5000;

/** The engine processes of each ready service, found from the port of its upstream URL. */
async function services(
  catalog: Catalog,
  proc: string | undefined,
): Promise<(PausableService & { hidden: boolean; url: string })[]> {
  return Promise.all(
    catalog.ready.map(async (s) => {
      const url = new URL(s.upstream.url);
      const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
      const local = isLoopbackHost(url.hostname) || url.hostname === "0.0.0.0";
      const found = local ? await findEngine(port, proc) : null;
      return {
        name: s.name,
        url: s.upstream.url,
        models: (s.info?.models ?? []).map((m) => m.id),
        pids: found?.pids ?? null,
        hidden: found?.hidden ?? false,
      };
    }),
  );
}

/** Runs the schedule check and the GPU watch on one timer. */
export class AutoPause {
  readonly #opts: AutoPauseOptions;
  readonly #users: GpuUsers;
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  /** Set once no GPU tool is found: the GPU watch stops, the schedule check goes on. */
  #noTool = false;
  #warnedHidden = false;

  constructor(options: AutoPauseOptions) {
    this.#opts = options;
    this.#users = new GpuUsers(options.settings);
  }

  start(): void {
    this.#timer = setTimeout(() => void this.tick(), this.#opts.settings().pollMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** One poll; the next is scheduled after it ends, so slow tools never pile up. */
  async tick(): Promise<void> {
    if (this.#polling) return;
    this.#polling = true;
    try {
      await this.#poll();
    } catch (err) {
      this.#opts.log.warn({ err: (err as Error).message }, "auto-pause poll failed");
    } finally {
      this.#polling = false;
      this.#opts.onChange();
      if (this.#timer) this.start();
    }
  }

  async #poll(): Promise<void> {
    const { settings, state, log } = this.#opts;
    const enabled = settings().enabled;
    if (enabled === false || this.#noTool) {
      state.setModels({});
      return;
    }
    const tools: ToolOptions = { env: this.#opts.env ?? process.env, timeoutMs: TOOL_TIMEOUT_MS };
    const report: GpuProcessReport = await listGpuProcesses(tools);
    if (!report.present) {
      // "Default on when a GPU tool is present": none is, so there is nothing to watch.
      if (enabled === true)
        log.warn("autoPause is on but neither nvidia-smi nor rocm-smi runs here");
      this.#noTool = true;
      state.setModels({});
      return;
    }
    for (const p of report.problems) log.debug({ problem: p }, "GPU process list incomplete");
    const ignore = new Set(settings().ignore);
    const candidates = report.processes.filter((p) => !ignore.has(basename(p.name)));
    const pausedNow = Object.keys(state.fields().paused_models ?? {}).length > 0;
    // Reading every process's sockets costs something: only when someone else may be there.
    const list =
      candidates.length || pausedNow ? await services(this.#opts.catalog(), this.#opts.proc) : [];
    const hidden = list.find((s) => s.hidden);
    if (hidden) {
      // Its own work on the GPU would read as another program's: pausing would never end.
      if (!this.#warnedHidden)
        log.warn(
          { service: hidden.name },
          "GPU auto-pause is off: the engine at %s runs as another user, so its GPU work cannot be told from other programs'. Run club-provider as the engine's user, or set autoPause.enabled false",
          hidden.url,
        );
      this.#warnedHidden = true;
      state.setModels({});
      return;
    }
    this.#warnedHidden = false;
    const before = JSON.stringify(state.fields().paused_models ?? {});
    const models = this.#users.poll({
      report,
      services: list,
      gpuIndex: (uuid) => this.#opts.gpus().find((g) => g.uuid === uuid)?.index,
      now: (this.#opts.now ?? Date.now)(),
    });
    state.setModels(models);
    const after = JSON.stringify(models);
    if (after !== before)
      log.info(
        { paused_models: models },
        "GPU auto-pause: %d model(s) paused",
        Object.keys(models).length,
      );
  }
}
