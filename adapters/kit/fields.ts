/**
 * Defensive readers for engine JSON. Engines differ by build, so every field is optional and
 * the wrong type counts as absent rather than as an error.
 */

/** A JSON object as a record; anything else becomes an empty one. */
export function obj(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/** A JSON array; anything else becomes an empty one. */
export function arr(value: unknown): unknown[] {
  return Array.isArray(value) ? (value as unknown[]) : [];
}

/** A string, or undefined when absent or not a string. */
export function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** A positive finite number, or undefined (engines report 0 or -1 for "unknown"). */
export function posNum(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : undefined;
}

/** The `error.message` of an OpenAI-style error envelope, if the body is one. */
export function errorMessage(body: unknown): string | undefined {
  const error = obj(body).error;
  return typeof error === "string" ? error : str(obj(error).message);
}

/** The first `data[].owned_by` of an OpenAI model list, or undefined when it is not one. */
export function firstOwner(body: unknown): string | undefined {
  return str(obj(arr(obj(body).data)[0]).owned_by);
}

/** True when a body is an OpenAI model list: `object: "list"` and a `data` array. */
export function isModelList(body: unknown): boolean {
  const list = obj(body);
  return list.object === "list" && Array.isArray(list.data);
}

const PATH_LIKE = /^(\/|\.{1,2}[/\\]|~[/\\]|[A-Za-z]:[/\\])/;
const SHARD = /-\d{5}-of-\d{5}$/;

/**
 * A readable model id from an engine's id. File paths (what llama-server reports without
 * `--alias`) become their basename without `.gguf` or a shard suffix; other ids, such as
 * `Qwen/Qwen2.5-7B-Instruct` or `org/repo:Q4_K_M`, stay as they are.
 * @example readableModelId("/models/tiny-qwen2-chat.gguf") // "tiny-qwen2-chat"
 */
export function readableModelId(id: string): string {
  if (!PATH_LIKE.test(id) && !/\.gguf$/i.test(id)) return id;
  const base = id.split(/[/\\]/).pop() ?? id;
  const name = base.replace(/\.gguf$/i, "").replace(SHARD, "");
  return name === "" ? id : name;
}
