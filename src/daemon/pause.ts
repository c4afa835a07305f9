/**
 * Whether the rig serves, and why not: the owner's own pause (`club-provider pause`), the
 * serving schedule, and models paused alone because their GPU is busy with something of the
 * owner's. A paused rig drains: running requests finish, new ones get 429, the tunnel stays.
 */
import type { PauseFields } from "../protocol/index.ts";
import { scheduleReason, type ScheduleWindow } from "./schedule.ts";

/** The longest reason the heartbeat carries (the protocol's limit). */
export const MAX_REASON = 256;

/** What `POST /pause`, `POST /resume` and `/status` report. */
export interface PauseView {
  /** Why the whole rig takes no work now (any cause), or null. */
  paused: string | null;
  /** The owner's own pause, or null. */
  manual: string | null;
  /** True while the schedule keeps the rig paused. */
  outside_schedule: boolean;
  /** Models paused alone, with why. */
  paused_models: Record<string, string>;
}

export interface PauseOptions {
  /** The pause kept from the last run (setting `paused`). */
  manual?: string | undefined;
  schedule?: () => readonly ScheduleWindow[];
  /** The clock the schedule is read with; tests inject one. */
  now?: () => Date;
  /** The owner paused or resumed: keep it (the daemon writes the setting). */
  persist?: (manual: string | undefined) => void;
}

/** The reason `club-provider pause` gives, with the owner's words when they gave some. */
export function manualReason(reason?: string): string {
  const text = reason?.trim() ? `paused by its owner: ${reason.trim()}` : "paused by its owner";
  return text.slice(0, MAX_REASON);
}

/** The pause state of one rig. */
export class PauseState {
  #manual: string | undefined;
  #models: Record<string, string> = {};
  readonly #opts: PauseOptions;

  constructor(options: PauseOptions = {}) {
    this.#opts = options;
    this.#manual = options.manual;
  }

  /** The owner pauses the whole rig, with a reason (see `manualReason`). */
  pause(reason: string): void {
    this.#manual = reason.slice(0, MAX_REASON);
    this.#opts.persist?.(this.#manual);
  }

  /** The owner lets the rig serve again (the schedule and busy GPUs still apply). */
  resume(): void {
    this.#manual = undefined;
    this.#opts.persist?.(undefined);
  }

  /** Models paused alone now (the auto-pause sets the whole map at each poll). */
  setModels(models: Record<string, string>): void {
    this.#models = { ...models };
  }

  /** Why the whole rig takes no work, or undefined while it serves. */
  rig(): string | undefined {
    const now = (this.#opts.now ?? (() => new Date()))();
    return this.#manual ?? scheduleReason(this.#opts.schedule?.() ?? [], now);
  }

  /** Why a model takes no work, or undefined while it serves. */
  model(id: string): string | undefined {
    return this.rig() ?? this.#models[id];
  }

  /** The heartbeat's pause fields: absent while everything serves. */
  fields(): PauseFields {
    const paused = this.rig();
    const models = Object.keys(this.#models).length ? { ...this.#models } : undefined;
    return { ...(paused ? { paused } : {}), ...(models ? { paused_models: models } : {}) };
  }

  /** The state as the status server reports it. */
  view(): PauseView {
    const rig = this.rig();
    return {
      paused: rig ?? null,
      manual: this.#manual ?? null,
      outside_schedule: rig !== undefined && this.#manual === undefined,
      paused_models: { ...this.#models },
    };
  }
}
