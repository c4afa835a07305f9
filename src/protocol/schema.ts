/**
 * A tiny typed validator for what peers send: each `Check<T>` takes an unknown value and a path
 * for messages, and returns the value typed or throws `SchemaError` naming the field. Every
 * string and list has a bound, so a valid message is also a small one.
 */

/** A value that failed its check; the message names the field and what it must be. */
export class SchemaError extends Error {
  readonly code = "bad_control_message";
}

export type Check<T> = (value: unknown, path: string) => T;

function fail(path: string, what: string): never {
  throw new SchemaError(`${path} must be ${what}`);
}

/** A string of `min`..`max` characters (default 0..128). */
export function str(options: { min?: number; max?: number } = {}): Check<string> {
  const min = options.min ?? 0;
  const max = options.max ?? 128;
  return (v, path) =>
    typeof v === "string" && v.length >= min && v.length <= max
      ? v
      : fail(path, `a string of ${min === 0 ? "at most" : `${min} to`} ${max} characters`);
}

/** A finite number in `min`..`max`; integers only where `integer` is set. */
export function num(options: { min: number; max: number; integer?: boolean }): Check<number> {
  const { min, max, integer } = options;
  return (v, path) =>
    typeof v === "number" &&
    Number.isFinite(v) &&
    v >= min &&
    v <= max &&
    (!integer || Number.isInteger(v))
      ? v
      : fail(path, `${integer ? "an integer" : "a number"} from ${min} to ${max}`);
}

export const bool: Check<boolean> = (v, path) =>
  typeof v === "boolean" ? v : fail(path, "true or false");

/** One of the given strings. */
export function oneOf<const T extends string>(values: readonly T[]): Check<T> {
  const set = new Set<string>(values);
  return (v, path) =>
    typeof v === "string" && set.has(v) ? (v as T) : fail(path, `one of ${values.join(", ")}`);
}

/** A list of at most `max` items, each checked. */
export function list<T>(item: Check<T>, max: number): Check<T[]> {
  return (v, path) => {
    if (!Array.isArray(v) || v.length > max) fail(path, `a list of at most ${max} items`);
    return v.map((x, i) => item(x, `${path}[${i}]`));
  };
}

/** `null` or what `check` accepts. */
export function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, path) => (v === null ? null : check(v, path));
}

/** A map with at most `max` keys of `key` shape, each value checked. */
export function record<T>(value: Check<T>, options: { max: number; key?: Check<string> }) {
  const key = options.key ?? str({ min: 1 });
  return (v: unknown, path: string): Record<string, T> => {
    if (!isPlainObject(v)) fail(path, "an object");
    const entries = Object.entries(v);
    if (entries.length > options.max) fail(path, `an object of at most ${options.max} entries`);
    const out: Record<string, T> = {};
    for (const [k, x] of entries) out[key(k, `${path} key`)] = value(x, `${path}.${k}`);
    return out;
  };
}

type Shape = Record<string, Check<unknown>>;
type Out<S extends Shape> = { [K in keyof S]: ReturnType<S[K]> };

/**
 * An object with `required` and `optional` fields. Unknown fields are dropped, so what a peer
 * adds beyond the schema never reaches the code (or the memory) behind it.
 */
export function obj<R extends Shape, O extends Shape = Record<string, never>>(
  required: R,
  optional?: O,
): Check<Out<R> & Partial<Out<O>>> {
  return (v, path) => {
    if (!isPlainObject(v)) fail(path, "an object");
    const out: Record<string, unknown> = {};
    for (const [k, check] of Object.entries(required)) out[k] = check(v[k], `${path}.${k}`);
    for (const [k, check] of Object.entries(optional ?? {}))
      if (v[k] !== undefined) out[k] = check(v[k], `${path}.${k}`);
    return out as Out<R> & Partial<Out<O>>;
  };
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
