/** The attempts running now, counted per member and per provider service (`capacity.ts`). */
import type { Attempt } from "./attempt.ts";
import { Slots } from "./capacity.ts";

interface Entry {
  attempt: Attempt;
  member: string;
  slot: string | undefined;
}

/** The running attempts, by job id, with counts per member and per service slot. */
export class RunningAttempts {
  /** Jobs per service slot; `pickForJob` reads it. */
  readonly slots = new Slots();
  readonly #byJob = new Map<string, Entry>();
  readonly #byMember = new Map<string, number>();

  get size(): number {
    return this.#byJob.size;
  }

  /** Attempts running for `member`. */
  count(member: string): number {
    return this.#byMember.get(member) ?? 0;
  }

  get(jobId: string): Attempt | undefined {
    return this.#byJob.get(jobId)?.attempt;
  }

  /** Every running attempt by job id. */
  entries(): [string, Attempt][] {
    return [...this.#byJob].map(([id, e]) => [id, e.attempt]);
  }

  add(jobId: string, member: string, attempt: Attempt, slot: string | undefined): void {
    this.#byJob.set(jobId, { attempt, member, slot });
    this.#byMember.set(member, this.count(member) + 1);
    if (slot) this.slots.take(slot);
  }

  /** Forgets a finished attempt, freeing its slot. */
  remove(jobId: string): void {
    const entry = this.#byJob.get(jobId);
    if (!entry) return;
    this.#byJob.delete(jobId);
    if (entry.slot) this.slots.give(entry.slot);
    const left = this.count(entry.member) - 1;
    if (left > 0) this.#byMember.set(entry.member, left);
    else this.#byMember.delete(entry.member);
  }
}
