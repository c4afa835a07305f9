/** Ids and ordering for stored work. */
import { randomBytes } from "node:crypto";

/** A fresh id, `<prefix>_` plus 24 hex digits (safe as a file name). */
export function newId(prefix: "job" | "batch" | "run"): string {
  return `${prefix}_${randomBytes(12).toString("hex")}`;
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
