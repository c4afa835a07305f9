/**
 * Requests, errors, bytes and generated tokens per model in the last hour, for the rig page: one bucket per
 * minute, sixty per model. Bounded: at most `MAX_MODELS` models; past it new ones are counted
 * as `(others)`. The owner's own requests count too (the page is about the rig's load).
 */
import type { RequestDoneInfo } from "../gateway/gateway.ts";

const MINUTES = 60;
const MAX_MODELS = 1000;

interface Bucket {
  minute: number;
  requests: number;
  errors: number;
  bytes: number;
  tokens: number;
}

/** One model's figures over the last hour. */
export interface HourFigures {
  requests: number;
  errors: number;
  bytes: number;
  /** Tokens the answers reported generating (or streamed); answers that said nothing count 0. */
  tokens: number;
}

export class HourUsage {
  readonly #models = new Map<string, Bucket[]>();

  add(
    info: Pick<RequestDoneInfo, "model" | "status" | "bytes"> & { tokens?: number | null },
    now = Date.now(),
  ): void {
    let key = info.model;
    if (!this.#models.has(key) && this.#models.size >= MAX_MODELS) key = "(others)";
    const minute = Math.floor(now / 60_000);
    const buckets = this.#models.get(key) ?? [];
    this.#models.set(key, buckets);
    let last = buckets.at(-1);
    if (last?.minute !== minute) {
      last = { minute, requests: 0, errors: 0, bytes: 0, tokens: 0 };
      buckets.push(last);
      while (buckets.length > 0 && (buckets[0]?.minute ?? minute) <= minute - MINUTES)
        buckets.shift();
    }
    last.requests++;
    if (info.status >= 400) last.errors++;
    last.bytes += info.bytes;
    last.tokens += info.tokens ?? 0;
  }

  /** A model's figures over the last sixty minutes (zeros when none). */
  figures(model: string, now = Date.now()): HourFigures {
    const since = Math.floor(now / 60_000) - MINUTES;
    const sum = { requests: 0, errors: 0, bytes: 0, tokens: 0 };
    for (const b of this.#models.get(model) ?? []) {
      if (b.minute <= since) continue;
      sum.requests += b.requests;
      sum.errors += b.errors;
      sum.bytes += b.bytes;
      sum.tokens += b.tokens;
    }
    return sum;
  }
}
