/**
 * ACE-Step's side of a music call: the `/release_task` body built from the club's music request
 * (its fields only: none of ACE-Step's server paths, LoRAs or LM settings), the state of a task
 * in a `/query_result` answer, and the `/v1/audio` path of a finished track, taken from the
 * engine's own result and nowhere else.
 */
import { UpstreamError } from "../../src/errors.ts";
import { badRequest } from "../../src/http/error.ts";
import { arr, obj, str } from "../kit/fields.ts";

/** Content-Type of each `audio_format` ACE-Step writes (its release_task_models.py). */
export const MUSIC_TYPES: Record<string, string> = {
  mp3: "audio/mpeg",
  wav: "audio/wav",
  wav32: "audio/wav",
  flac: "audio/flac",
  opus: "audio/opus",
  aac: "audio/aac",
};

type Rule =
  | { kind: "string"; max: number }
  | { kind: "int" | "number"; min: number; max: number }
  | { kind: "bool" };

/** The club's music request (club-platform.md §2.2), with ACE-Step's own ranges. */
const FIELDS: Record<string, Rule> = {
  prompt: { kind: "string", max: 10_000 },
  lyrics: { kind: "string", max: 20_000 },
  inference_steps: { kind: "int", min: 1, max: 200 },
  guidance_scale: { kind: "number", min: 0, max: 30 },
  use_random_seed: { kind: "bool" },
  seed: { kind: "int", min: -1, max: 2 ** 32 - 1 },
  audio_duration: { kind: "number", min: 1, max: 600 },
  bpm: { kind: "int", min: 30, max: 300 },
  key_scale: { kind: "string", max: 64 },
  time_signature: { kind: "string", max: 8 },
  vocal_language: { kind: "string", max: 16 },
  thinking: { kind: "bool" },
};

function check(name: string, rule: Rule, value: unknown): unknown {
  if (rule.kind === "bool") {
    if (typeof value !== "boolean") throw badRequest(`"${name}" must be true or false`);
    return value;
  }
  if (rule.kind === "string") {
    if (typeof value !== "string") throw badRequest(`"${name}" must be a string`);
    if (value.length > rule.max) throw badRequest(`"${name}" is longer than ${rule.max}`);
    return value;
  }
  const ok = typeof value === "number" && (rule.kind === "number" || Number.isInteger(value));
  if (!ok || value < rule.min || value > rule.max)
    throw badRequest(`"${name}" must be a number from ${rule.min} to ${rule.max}`);
  return value;
}

/**
 * The `/release_task` body for a club music request to model `servedId`, and its audio format.
 * @example musicBody({ prompt: "lofi piano", audio_format: "wav" }, "acestep-v15-turbo")
 */
export function musicBody(
  json: Record<string, unknown>,
  servedId: string,
): { body: Record<string, unknown>; format: string } {
  const body: Record<string, unknown> = { model: servedId, task_type: "text2music", batch_size: 1 };
  for (const [name, rule] of Object.entries(FIELDS)) {
    const value = json[name];
    if (value !== undefined && value !== null) body[name] = check(name, rule, value);
  }
  const task = json.task_type;
  if (task !== undefined && task !== null && task !== "text2music")
    throw badRequest(`"task_type" must be text2music (other tasks need files on the rig)`);
  const format = json.audio_format ?? "mp3";
  if (typeof format !== "string" || !(format in MUSIC_TYPES))
    throw badRequest(`"audio_format" must be one of ${Object.keys(MUSIC_TYPES).join(", ")}`);
  body.audio_format = format;
  // A seed is asked for to be used: ACE-Step draws one unless told not to.
  if (body.seed !== undefined && body.seed !== -1 && body.use_random_seed === undefined)
    body.use_random_seed = false;
  if (!body.prompt && !body.lyrics) throw badRequest(`"prompt" or "lyrics" is required`);
  return { body, format };
}

/** A task as `/query_result` reports it. */
export type TaskState =
  | { kind: "running"; fraction: number | null; detail: string }
  | { kind: "done"; path: string }
  | { kind: "failed"; why: string };

/** The state of one `/query_result` item (`status` 0 running, 1 done, 2 failed). */
export function taskState(item: Record<string, unknown>): TaskState {
  const text = str(item.progress_text);
  if (item.status === 0 || item.status === undefined) {
    const p = item.progress;
    const fraction = typeof p === "number" && p >= 0 && p <= 1 ? p : null;
    return { kind: "running", fraction, detail: text ?? "running" };
  }
  let results: unknown[] = [];
  try {
    results = arr(JSON.parse(str(item.result) ?? "[]"));
  } catch {
    results = [];
  }
  if (item.status === 1) {
    const file = str(obj(results[0]).file);
    if (file) return { kind: "done", path: file };
    return { kind: "failed", why: "the task succeeded without a file" };
  }
  return { kind: "failed", why: str(item.error) ?? text ?? str(item.result) ?? "no reason given" };
}

/**
 * The `/v1/audio` path for a result's `file`: ACE-Step writes `/v1/audio?path=<encoded>`, or a
 * bare path. Anything naming another host or scheme is refused: the rig fetches only from the
 * engine it serves.
 */
export function audioPath(file: string): string {
  let path = file;
  if (file.startsWith("/v1/audio?")) path = new URLSearchParams(file.slice(10)).get("path") ?? "";
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(file))
    throw new UpstreamError("upstream_bad_answer", `ACE-Step named its audio by URL: ${file}`);
  if (path === "") throw new UpstreamError("upstream_bad_answer", "ACE-Step named no audio file");
  return `/v1/audio?path=${encodeURIComponent(path)}`;
}
