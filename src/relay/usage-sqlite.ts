/**
 * The usage table's statements for the SQLite store (`jobs/sqlite-store.ts`), which runs them
 * in its group commits like every other write: an upsert that adds to a row's counters, the
 * prune by day, and the two reads (by member, by rig owner).
 */
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { USAGE_COUNTERS, type UsageQuery, type UsageRow } from "./jobs/store.ts";

/** The usage writes, as the SQLite store queues them. */
export type UsageOp =
  { kind: "usage"; rows: readonly UsageRow[] } | { kind: "pruneUsage"; beforeDay: string };

const KEY = ["member", "provider", "owner", "model", "day"] as const;

/** The prepared statements over `db`'s usage table. */
export function usageStatements(db: DatabaseSync): {
  apply(op: UsageOp): void;
  read(query: UsageQuery): UsageRow[];
} {
  const cols = [...KEY, ...USAGE_COUNTERS];
  const upsert = db.prepare(
    `INSERT INTO usage (${cols.join(", ")}) VALUES (${cols.map((c) => `:${c}`).join(", ")})
     ON CONFLICT (${KEY.join(", ")}) DO UPDATE SET
     ${USAGE_COUNTERS.map((c) => `${c} = ${c} + excluded.${c}`).join(", ")}`,
  );
  const prune = db.prepare("DELETE FROM usage WHERE day < ?");
  const reads = new Map<string, StatementSync>();
  const select = (by: "member" | "owner", model: boolean): StatementSync => {
    const sql = `SELECT ${cols.join(", ")} FROM usage WHERE ${by} = :who AND day >= :since${
      model ? " AND model = :model" : ""
    } ORDER BY day DESC, model, provider, member`;
    let st = reads.get(sql);
    if (!st) reads.set(sql, (st = db.prepare(sql)));
    return st;
  };
  return {
    apply(op) {
      if (op.kind === "pruneUsage") prune.run(op.beforeDay);
      else for (const row of op.rows) upsert.run({ ...row });
    },
    read(q) {
      const by = "member" in q ? "member" : "owner";
      const params: Record<string, string> = {
        who: "member" in q ? q.member : q.owner,
        since: q.sinceDay,
      };
      if (q.model !== undefined) params.model = q.model;
      return select(by, q.model !== undefined).all(params) as unknown as UsageRow[];
    },
  };
}
