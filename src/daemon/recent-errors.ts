/**
 * The last few things that went wrong (failed requests, lost tunnels, engines gone down), kept
 * for `/status` and `club-provider status` so an operator sees them without reading logs.
 */

/** What part an error came from. */
export type ErrorKind = "request" | "tunnel" | "engine";

/** One remembered error; repeats of the same message in a row are counted, not stored again. */
export interface RecentError {
  /** When it last happened, ISO 8601. */
  time: string;
  kind: ErrorKind;
  message: string;
  /** How many times in a row it happened. */
  count: number;
}

/**
 * A ring buffer of recent errors, oldest first.
 * @example
 * const errors = new RecentErrors(20);
 * errors.add("tunnel", "tunnel 0 lost: relay shutting down");
 * errors.list(); // [{ time, kind: "tunnel", message, count: 1 }]
 */
export class RecentErrors {
  readonly #entries: RecentError[] = [];

  constructor(readonly capacity = 20) {}

  add(kind: ErrorKind, message: string, now = new Date()): void {
    const last = this.#entries.at(-1);
    if (last?.kind === kind && last.message === message) {
      last.count++;
      last.time = now.toISOString();
      return;
    }
    this.#entries.push({ time: now.toISOString(), kind, message, count: 1 });
    if (this.#entries.length > this.capacity) this.#entries.shift();
  }

  list(): RecentError[] {
    return this.#entries.map((e) => ({ ...e }));
  }
}
