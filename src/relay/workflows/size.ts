/**
 * How large a workflow value is once written out as JSON, counted without writing it. A sole
 * `{{…}}` renders to the value itself, not a copy, so a step can hold one list a hundred times
 * and the next step that list of lists a hundred times: a few kilobytes in memory that would be
 * gigabytes in the store, in an answer, or in the text of a prompt. Every value a step makes
 * is counted against a budget, and counting stops at the budget, so it costs no more than that.
 */

/** A value past its budget; the message names what and the limit. */
export class TooLarge extends Error {}

/** Values nested deeper than this are refused rather than walked. */
const MAX_DEPTH = 64;

/** Bytes of JSON still allowed; `take` throws `TooLarge` once they are spent. */
export class Budget {
  /** Bytes counted so far. */
  used = 0;

  constructor(
    readonly limit: number,
    /** What is counted, for the error, e.g. `step "story"'s input`. */
    readonly what: string,
    /** The setting that sets `limit`, for the error. */
    readonly setting: string,
  ) {}

  take(bytes: number): void {
    this.used += bytes;
    if (this.used > this.limit)
      throw new TooLarge(
        `${this.what} comes to more than ${this.limit} bytes of JSON (${this.setting})`,
      );
  }

  /** Counts `value` as JSON (strings by their length, escapes aside). */
  count(value: unknown, depth = 0): void {
    if (typeof value === "string") return this.take(value.length + 2);
    if (typeof value !== "object" || value === null) return this.take(String(value).length);
    if (depth >= MAX_DEPTH) throw new TooLarge(`${this.what} is nested deeper than ${MAX_DEPTH}`);
    if (Array.isArray(value)) {
      this.take(value.length + 1);
      for (const item of value) this.count(item, depth + 1);
      return;
    }
    this.take(2);
    for (const [key, item] of Object.entries(value)) {
      this.take(key.length + 4);
      this.count(item, depth + 1);
    }
  }
}

/** `value`'s size as JSON, or `TooLarge` past `limit`. */
export function jsonSize(value: unknown, limit: number, what: string, setting: string): number {
  const budget = new Budget(limit, what, setting);
  budget.count(value);
  return budget.used;
}
