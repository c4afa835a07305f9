/**
 * The relay's book of what each member used: meters hand it each answer's counts, which it
 * adds up in memory per (member, rig, rig owner, model, UTC day) and writes to the job store
 * in one batch every `usageFlushMs` and on close. Rows older than `usageRetainDays` are pruned.
 * `report` is what `GET /v1/usage` shows a member.
 */
import type { Logger } from "../log.ts";
import { describeError } from "../errors.ts";
import { USAGE_COUNTERS, type JobStore, type UsageCounts, type UsageRow } from "./jobs/store.ts";
import type { UsageSink, UsageTarget } from "./usage-meter.ts";

const DAY_MS = 86_400_000;
const PRUNE_EVERY_MS = 3_600_000;

/** The last day `utcDay` named, and when it starts: every answer of a day asks for the same. */
let lastDay = { start: NaN, name: "" };

/** The UTC day of a time, `YYYY-MM-DD` (a JavaScript day is always 86 400 000 ms). */
export function utcDay(ms: number): string {
  const start = Math.floor(ms / DAY_MS) * DAY_MS;
  if (start !== lastDay.start)
    lastDay = { start, name: new Date(start).toISOString().slice(0, 10) };
  return lastDay.name;
}

/** What `UsageBook` takes. */
export interface UsageBookOptions {
  store: JobStore;
  log: Logger;
  flushMs: number;
  retainDays: number;
  /** The clock (tests move it). */
  now?: () => number;
}

/** One row as `GET /v1/usage` shows it. */
export type UsageView = {
  day: string;
  model: string;
  provider: string;
  member?: string;
} & UsageCounts;

/** What a member sees: their own use, and other members' use of their rigs. */
export interface UsageReport {
  used: UsageView[];
  served: UsageView[];
}

/** Sums rows by the fields `key` names, newest day first. */
function sum(rows: UsageRow[], key: (r: UsageRow) => UsageView): UsageView[] {
  const out = new Map<string, UsageView>();
  for (const r of rows) {
    const view = key(r);
    const id = JSON.stringify([view.day, view.model, view.provider, view.member ?? ""]);
    const had = out.get(id);
    if (!had) out.set(id, view);
    else for (const c of USAGE_COUNTERS) had[c] += r[c];
  }
  return [...out.values()].sort(
    (a, b) =>
      b.day.localeCompare(a.day) ||
      a.model.localeCompare(b.model) ||
      a.provider.localeCompare(b.provider) ||
      (a.member ?? "").localeCompare(b.member ?? ""),
  );
}

const counters = (r: UsageRow): UsageCounts =>
  Object.fromEntries(USAGE_COUNTERS.map((c) => [c, r[c]])) as unknown as UsageCounts;

/**
 * The book; `close()` writes what is pending.
 * @example
 * const book = new UsageBook({ store, log, flushMs: 5000, retainDays: 400 });
 * const { used, served } = await book.report("alice", { days: 30 });
 */
export class UsageBook implements UsageSink {
  readonly #o: UsageBookOptions;
  readonly #now: () => number;
  #pending = new Map<string, UsageRow>();
  #flushing: Promise<void> = Promise.resolve();
  readonly #timers: NodeJS.Timeout[];

  constructor(o: UsageBookOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#timers = [
      setInterval(() => void this.flush(), o.flushMs),
      setInterval(() => void this.prune(), PRUNE_EVERY_MS),
    ];
    for (const t of this.#timers) t.unref();
  }

  record(t: UsageTarget, counts: UsageCounts): void {
    const day = utcDay(this.#now());
    this.#add({ ...t, day, ...counts });
  }

  #add(row: UsageRow): void {
    const key = JSON.stringify([row.member, row.provider, row.owner, row.model, row.day]);
    const had = this.#pending.get(key);
    if (!had) this.#pending.set(key, { ...row });
    else for (const c of USAGE_COUNTERS) had[c] += row[c];
  }

  /** Writes what was counted since the last flush; a failed write is kept for the next. */
  flush(): Promise<void> {
    const next = this.#flushing.then(async () => {
      const rows = [...this.#pending.values()];
      this.#pending = new Map();
      if (rows.length === 0) return;
      try {
        await this.#o.store.addUsage(rows);
      } catch (err) {
        this.#o.log.error({ err: describeError(err) }, "writing usage to the job store failed");
        for (const r of rows) this.#add(r);
      }
    });
    this.#flushing = next;
    return next;
  }

  /** Deletes rows older than the retention. */
  async prune(): Promise<void> {
    const before = utcDay(this.#now() - this.#o.retainDays * DAY_MS);
    try {
      await this.#o.store.pruneUsage(before);
    } catch (err) {
      this.#o.log.error({ err: describeError(err) }, "pruning old usage failed");
    }
  }

  /** `member`'s use, and other members' use of `member`'s rigs, over the last `days` days. */
  async report(member: string, q: { days: number; model?: string }): Promise<UsageReport> {
    await this.flush();
    const sinceDay = utcDay(this.#now() - (q.days - 1) * DAY_MS);
    const model = q.model === undefined ? {} : { model: q.model };
    const own = await this.#o.store.readUsage({ member, sinceDay, ...model });
    const rigs = await this.#o.store.readUsage({ owner: member, sinceDay, ...model });
    return {
      used: sum(own, (r) => ({ day: r.day, model: r.model, provider: r.provider, ...counters(r) })),
      served: sum(
        rigs.filter((r) => r.member !== member),
        (r) => ({
          day: r.day,
          model: r.model,
          provider: r.provider,
          member: r.member,
          ...counters(r),
        }),
      ),
    };
  }

  /** Stops the timers and writes what is pending. */
  async close(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    await this.flush();
  }
}
