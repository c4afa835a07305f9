/**
 * The owner's limits on other members' use of the rig: requests at once, and requests per UTC
 * day, for every member (`"*"`) or one by name (which wins). The owner is never limited. Past a
 * limit the request is answered 429 saying which limit and when it frees up, and the relay tries
 * another provider that serves the model.
 */
import type { Requester } from "./capacity.ts";

/** One member's bounds; an absent field is no bound. */
export interface MemberLimit {
  /** Requests of the member running or waiting here at once. */
  concurrent?: number;
  /** Requests of the member started here per UTC day. */
  requestsPerDay?: number;
}

/** A granted request; call `release` once it is over, however it ended. */
export type Admission = { release: () => void } | { refusal: string; retryAfter: number };

const DAY_MS = 86_400_000;

/**
 * Counts each member's requests against the owner's `memberLimits` setting.
 * @example
 * const admitted = limits.admit(who);
 * if ("refusal" in admitted) return tooMany(admitted);
 * res.once("close", admitted.release);
 */
export class MemberLimits {
  readonly #settings: () => Readonly<Record<string, MemberLimit>>;
  readonly #now: () => number;
  readonly #running = new Map<string, number>();
  #day = -1;
  readonly #today = new Map<string, number>();

  constructor(settings: () => Readonly<Record<string, MemberLimit>>, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
  }

  /** Lets the request in, counting it, or says which limit keeps it out. */
  admit(who: Requester): Admission {
    if (who.owner) return { release: () => undefined };
    const settings = this.#settings();
    const limit = settings[who.member] ?? settings["*"];
    const now = this.#now();
    const day = Math.floor(now / DAY_MS);
    if (day !== this.#day) {
      this.#day = day;
      this.#today.clear();
    }
    const running = this.#running.get(who.member) ?? 0;
    const today = this.#today.get(who.member) ?? 0;
    if (limit?.concurrent !== undefined && running >= limit.concurrent)
      return {
        refusal: `${who.member} already has ${running} request(s) on this rig, the most its owner allows at once (${limit.concurrent}): retry when one finishes`,
        retryAfter: 1,
      };
    if (limit?.requestsPerDay !== undefined && today >= limit.requestsPerDay) {
      const reset = (day + 1) * DAY_MS;
      return {
        refusal: `${who.member} used the ${limit.requestsPerDay} requests a day this rig's owner allows; the count resets at 00:00 UTC (${new Date(reset).toISOString()})`,
        retryAfter: Math.max(1, Math.ceil((reset - now) / 1000)),
      };
    }
    this.#running.set(who.member, running + 1);
    this.#today.set(who.member, today + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const left = (this.#running.get(who.member) ?? 1) - 1;
        if (left > 0) this.#running.set(who.member, left);
        else this.#running.delete(who.member);
      },
    };
  }
}
