/**
 * One budget for the request bodies the gateway holds in memory at once, across every stream of
 * every tunnel: a relay that opens many streams of large JSON bodies gets 503s, not the rig's RAM.
 */
import type { Readable } from "node:stream";

/** Default total of buffered request bodies: 256 MiB. */
export const DEFAULT_MAX_BUFFERED_BYTES = 256 * 1024 * 1024;

/** Bytes held in memory by requests in progress, against a fixed total. */
export class BodyBudget {
  #used = 0;
  constructor(readonly limit: number = DEFAULT_MAX_BUFFERED_BYTES) {}

  /** Bytes held now. */
  get used(): number {
    return this.#used;
  }

  /** Takes `bytes` from the budget; false, taking nothing, when they do not fit. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  /** Gives back bytes taken earlier. */
  give(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
  }
}

/** How reading a body against a per-request limit and the shared budget ended. */
export type BudgetedRead =
  { ok: true; body: Buffer } | { ok: false; reason: "too_large" | "over_budget" };

/**
 * Reads a whole body of at most `limit` bytes, taking each chunk from `budget` as it comes.
 * Whatever was taken stays taken until the caller gives back `taken()` (when the request is
 * over: the parsed body lives as long as the request). On a refusal reading stops; the caller
 * answers and drops the rest (`dropBody`).
 */
export function readBudgeted(
  req: Readable,
  limit: number,
  budget: BodyBudget,
  onTake: (bytes: number) => void,
): Promise<BudgetedRead> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (reason: "too_large" | "over_budget"): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      resolve({ ok: false, reason });
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) return stop("too_large");
      if (!budget.take(chunk.length)) return stop("over_budget");
      onTake(chunk.length);
      chunks.push(chunk);
    };
    const onEnd = (): void => resolve({ ok: true, body: Buffer.concat(chunks, size) });
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", reject);
  });
}
