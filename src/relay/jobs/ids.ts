/** Ids of requests and of stored work, and the ordering of stored work. */
import { randomFillSync } from "node:crypto";

/**
 * Random bytes for ids, drawn from the system's CSPRNG 4 KiB at a time, each byte used once (as
 * `randomUUID` caches its own). Per id, `randomBytes` costs about 2 µs and `randomUUID` with
 * its dashes taken out a few hundred bytes of garbage; these cost neither (`bench/ids.ts`).
 * Never for a secret: the pool keeps what it handed out in memory until it is refilled.
 */
const pool = Buffer.alloc(4096);
let used = pool.length;

/** `bytes` random bytes as hex (`bytes` ≤ 4096). */
function randomHex(bytes: number): string {
  if (used + bytes > pool.length) {
    randomFillSync(pool);
    used = 0;
  }
  const hex = pool.toString("hex", used, used + bytes);
  used += bytes;
  return hex;
}

/** A fresh id, `<prefix>_` plus 24 hex digits (safe as a file name). */
export function newId(prefix: "job" | "batch" | "run" | "req"): string {
  return `${prefix}_${randomHex(12)}`;
}

let last = 0;

/** A number larger than every one handed out or seen before: submission order across restarts. */
export function nextSeq(): number {
  last = Math.max(last + 1, Date.now());
  return last;
}

/** Records a sequence number read back from the store, so new ones sort after it. */
export function seenSeq(seq: number): void {
  last = Math.max(last, seq);
}
