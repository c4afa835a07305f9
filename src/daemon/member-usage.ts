/**
 * What other members used on this rig since the daemon started, as its owner sees it in
 * `/status` and `club-provider status`: requests, errors, aborted requests and bytes sent, per
 * member and model. The relay keeps the durable count, tokens included (`GET /v1/usage`).
 * Bounded: at most `MAX_ROWS` member-model pairs; past it new pairs are counted as `(others)`.
 */
import type { RequestDoneInfo } from "../gateway/gateway.ts";
import { ABORTED_STATUS } from "../log.ts";

/** One member's use of one model here. */
export interface MemberUsageRow {
  member: string;
  model: string;
  requests: number;
  errors: number;
  aborted: number;
  bytes_out: number;
}

const MAX_ROWS = 1000;

export class MemberUsage {
  readonly #rows = new Map<string, MemberUsageRow>();

  /** Counts one finished request of another member (the owner's own are not counted). */
  add(info: RequestDoneInfo): void {
    if (info.member === undefined) return;
    let key = `${info.member}\n${info.model}`;
    let row = this.#rows.get(key);
    if (!row && this.#rows.size >= MAX_ROWS) {
      key = "(others)\n(others)";
      row = this.#rows.get(key);
    }
    if (!row) {
      const [member = "", model = ""] = key.split("\n");
      row = { member, model, requests: 0, errors: 0, aborted: 0, bytes_out: 0 };
      this.#rows.set(key, row);
    }
    row.requests++;
    if (info.status === ABORTED_STATUS) row.aborted++;
    else if (info.status >= 400) row.errors++;
    row.bytes_out += info.bytes;
  }

  /** The rows, most requests first. */
  list(): MemberUsageRow[] {
    return [...this.#rows.values()].sort((a, b) => b.requests - a.requests);
  }
}
