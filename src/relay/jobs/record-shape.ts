/**
 * What a stored record must look like to be taken back at start. A row of another shape (a
 * hand edit, a bug of an older version) is skipped with a warning naming it, never fatal.
 */
import { JOB_STATUSES, type StoredRecord } from "./types.ts";
import { RUN_STATUSES } from "../workflows/types.ts";

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): boolean => typeof v === "number" && Number.isFinite(v);
const isString = (v: unknown): boolean => typeof v === "string" && v !== "";

/** Fields each kind needs beyond the common ones, as checks. */
const NEEDS: Record<string, Record<string, (v: unknown) => boolean>> = {
  job: {
    endpoint: isString,
    model: isString,
    status: (v) => (JOB_STATUSES as readonly unknown[]).includes(v),
    queued: isNumber,
    attempts: isNumber,
    body_bytes: isNumber,
  },
  batch: {
    jobs: (v) => Array.isArray(v) && v.every(isString),
    custom_ids: Array.isArray,
  },
  run: {
    status: (v) => (RUN_STATUSES as readonly unknown[]).includes(v),
    spec: (v) => isObject(v) && Array.isArray(v.steps),
    inputs: isObject,
    models: isObject,
    steps: (v) => Array.isArray(v) && v.every(isObject),
  },
};

/**
 * The record in `data` (a row's JSON) when it has the shape of `kind` and the row's `id`, else
 * a sentence saying what is wrong.
 */
export function checkRecord(kind: string, id: string, data: string): StoredRecord | string {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return "its data is not JSON";
  }
  if (!isObject(value)) return "its data is not a JSON object";
  if (value.kind !== kind) return `its kind is ${JSON.stringify(value.kind)}, not "${kind}"`;
  if (value.id !== id) return `its data names another id (${JSON.stringify(value.id)})`;
  const common = { seq: isNumber, member: isString, created: isNumber };
  const checks = { ...common, ...NEEDS[kind] };
  const bad = Object.entries(checks)
    .filter(([field, ok]) => !ok(value[field]))
    .map(([field]) => field);
  if (bad.length > 0) return `missing or malformed: ${bad.join(", ")}`;
  return value as unknown as StoredRecord;
}
