/**
 * What the audio adapters share: the club's voices shape and sending a rewritten multipart form
 * to an engine.
 */
import { pipeline } from "node:stream";
import { badRequest } from "../../src/http/error.ts";
import type { EngineCall, EngineReply, Upstream } from "../adapter.ts";
import { arr, obj, str } from "./fields.ts";
import { boundaryOf } from "../../src/http/multipart-parser.ts";
import { FormRewriter, type FormRules } from "./multipart.ts";
import { forwardOpenAI, getJson, type EngineLabel } from "./openai-style.ts";
import { errorReply, jsonReply } from "./reply.ts";

/**
 * One voice in the answer to `GET /v1/audio/voices?model=`. The answer is always
 * `{"voices": Voice[]}`, sorted by `id`, whatever shape the engine used.
 */
export interface Voice {
  /** What to send as `voice` in `/v1/audio/speech`. */
  id: string;
  name: string;
  /** BCP 47-ish language tag in lower case (`en-us`, `ja`), when the engine says. */
  language?: string;
  gender?: string;
}

/** Content-Type of each `/v1/audio/speech` `response_format` (OpenAI's, Kokoro's, speaches'). */
export const SPEECH_TYPES: Record<string, string> = {
  mp3: "audio/mpeg",
  opus: "audio/opus",
  aac: "audio/aac",
  flac: "audio/flac",
  wav: "audio/wav",
  pcm: "audio/pcm",
};

/**
 * Forwards `/v1/audio/speech` as JSON; the audio streams back as the engine produces it. A
 * Content-Type missing from the engine's answer is set from `response_format` (OpenAI's default
 * is mp3).
 */
export async function forwardSpeech(call: EngineCall, label: EngineLabel): Promise<EngineReply> {
  const reply = await forwardOpenAI(call, label);
  const format = str(call.json?.response_format) ?? "mp3";
  if (reply.status < 300) reply.headers["content-type"] ??= SPEECH_TYPES[format] ?? "audio/mpeg";
  return reply;
}

/** Engine voice entries (strings or objects) in the club's shape, deduplicated, sorted by id. */
export function toVoices(items: unknown[]): Voice[] {
  const byId = new Map<string, Voice>();
  for (const item of items) {
    const entry = typeof item === "string" ? { id: item } : obj(item);
    const id = str(entry.id) ?? str(entry.name);
    if (!id || byId.has(id)) continue;
    const voice: Voice = { id, name: str(entry.name) ?? id };
    const language = str(entry.language);
    const gender = str(entry.gender);
    if (language) voice.language = language.toLowerCase();
    if (gender) voice.gender = gender;
    byId.set(id, voice);
  }
  return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/**
 * Reads an engine's voice list at `path` (`{"voices": [...]}` or a bare array) and answers in
 * the club's shape; an engine error becomes a JSON error with the engine's status.
 */
export async function voicesReply(
  upstream: Upstream,
  path: string,
  signal: AbortSignal,
  engine: string,
  shape: (voices: Voice[]) => Voice[] = (v) => v,
): Promise<EngineReply> {
  const answer = await getJson(upstream, path, signal, 30_000);
  const list = Array.isArray(answer.json) ? answer.json : obj(answer.json).voices;
  if (answer.status !== 200 || !Array.isArray(list))
    return errorReply(
      answer.status >= 400 ? answer.status : 502,
      "upstream_error",
      `${engine} answered ${answer.status} to GET ${path}` +
        (answer.status === 200 ? " without a voice list" : ""),
    );
  return jsonReply(200, { voices: shape(toVoices(arr(list))) });
}

/**
 * Sends `call`'s multipart body to `path`, rewritten by `rules` as it streams. A form the
 * rewriter refuses is refused (a 400 `HttpError`); the engine never sees it whole.
 */
export async function forwardForm(
  call: EngineCall,
  path: string,
  rules: FormRules,
  label: EngineLabel,
): Promise<EngineReply> {
  const boundary = boundaryOf(call.headers["content-type"]);
  if (!boundary || !call.stream)
    throw badRequest(`${call.endpoint.path} takes multipart/form-data`);
  const form = new FormRewriter(boundary, rules);
  pipeline(call.stream, form, () => undefined);
  const headers = { ...call.headers, "content-type": form.contentType };
  try {
    return await forwardOpenAI({ ...call, path, headers, stream: form }, label);
  } catch (err) {
    if (form.failure) throw badRequest(form.failure.message);
    throw err;
  }
}
