/**
 * The auto-pause: a program on a GPU that is none of the rig's engines (a game, a render, the
 * owner's own training) pauses the models on that GPU once it has held it for `afterMs`, and
 * they serve again `resumeMs` after it left. Display servers and compositors (`ignore`) never
 * count. A service whose GPU cannot be told is paused whenever any GPU is taken.
 */
import { basename } from "node:path";
import type { AutoPauseConfig } from "../config.ts";
import type { GpuProcess, GpuProcessReport } from "../hardware/gpu-processes.ts";

/** One service as the auto-pause sees it. */
export interface PausableService {
  name: string;
  /** The model ids it serves. */
  models: string[];
  /** Its engine's processes on this machine; null for an engine on another machine. */
  pids: Set<number> | null;
}

/** What one poll needs to know, gathered by the daemon. */
export interface GpuUsersInput {
  report: GpuProcessReport;
  services: PausableService[];
  /** The GPU's position in the rig's list, by UUID, for messages. */
  gpuIndex: (uuid: string) => number | undefined;
  now: number;
}

interface Busy {
  /** When a foreign program was first seen in this run of sightings. */
  since: number | undefined;
  /** The first poll that no longer saw one, while paused; resumeMs counts from here. */
  gone: number | undefined;
  paused: boolean;
  who: GpuProcess;
}

/** `gpu` is a UUID, or `*` for processes the tool places on no GPU in particular. */
const ANY = "*";

/** The time-keeping of the auto-pause; `poll` answers the models paused now, with why. */
export class GpuUsers {
  readonly #busy = new Map<string, Busy>();

  constructor(
    private readonly settings: () => AutoPauseConfig,
    private readonly ownPid = process.pid,
  ) {}

  /** Programs on the GPUs that are not the rig's (nor ignored), by GPU. */
  foreign(input: GpuUsersInput): Map<string, GpuProcess> {
    const ignore = new Set(this.settings().ignore);
    const engines = new Set(input.services.flatMap((s) => [...(s.pids ?? [])]));
    const found = new Map<string, GpuProcess>();
    for (const p of input.report.processes) {
      if (p.pid === this.ownPid || engines.has(p.pid)) continue;
      if (ignore.has(basename(p.name)) || ignore.has(p.name)) continue;
      const key = p.gpu ?? ANY;
      if (!found.has(key)) found.set(key, p);
    }
    return found;
  }

  /** Advances the clock to `input.now` and answers the models paused now, with why. */
  poll(input: GpuUsersInput): Record<string, string> {
    const { afterMs, resumeMs } = this.settings();
    const now = input.now;
    const foreign = this.foreign(input);
    for (const [gpu, who] of foreign) {
      const b = this.#busy.get(gpu) ?? { since: undefined, gone: undefined, paused: false, who };
      b.since ??= now;
      b.gone = undefined;
      b.who = who;
      if (now - b.since >= afterMs) b.paused = true;
      this.#busy.set(gpu, b);
    }
    for (const [gpu, b] of this.#busy) {
      if (foreign.has(gpu)) continue;
      b.since = undefined;
      b.gone ??= now;
      if (!b.paused || now - b.gone >= resumeMs) this.#busy.delete(gpu);
    }
    const taken = [...this.#busy].filter(([, b]) => b.paused);
    const models: Record<string, string> = {};
    if (taken.length === 0) return models;
    // A model that another, free engine also serves stays up (its id is what the relay sees).
    const free = new Set<string>();
    for (const s of input.services) {
      if (s.pids === null) {
        s.models.forEach((m) => free.add(m));
        continue; // its GPU is another machine's
      }
      const own = new Set(
        input.report.processes.filter((p) => s.pids?.has(p.pid) && p.gpu).map((p) => p.gpu),
      );
      // A service whose GPU is unknown shares every GPU's fate; one on a known GPU only its own.
      const hit = taken.find(([gpu]) => own.size === 0 || own.has(gpu) || gpu === ANY);
      if (!hit) {
        s.models.forEach((m) => free.add(m));
        continue;
      }
      const reason = this.#reason(hit[0], hit[1].who, input.gpuIndex);
      for (const m of s.models) models[m] ??= reason;
    }
    return Object.fromEntries(Object.entries(models).filter(([m]) => !free.has(m)));
  }

  #reason(gpu: string, who: GpuProcess, gpuIndex: (uuid: string) => number | undefined): string {
    const index = gpu === ANY ? undefined : gpuIndex(gpu);
    const which = gpu === ANY ? "a GPU" : index === undefined ? `GPU ${gpu}` : `GPU ${index}`;
    const name = basename(who.name) || "unknown";
    return `${which} is in use by another program (${name}, pid ${who.pid})`.slice(0, 256);
  }
}
