/**
 * What the audio adapters share: the club's voices shape, replies the adapter writes itself,
 * and sending a rewritten multipart form to an engine.
 */
import { Readable, pipeline } from "node:stream";
import { envelope, type ErrorType } from "../../src/protocol/index.ts";
import type { EngineCall, EngineReply, Upstream } from "../adapter.ts";
import { arr, obj, str } from "./fields.ts";
import { FormRewriter, formBoundary, type FormRules } from "./multipart.ts";
import { forwardOpenAI, getJson, type EngineLabel } from "./openai-style.ts";

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

/** A reply the adapter answers itself, with a JSON body. */
export function jsonReply(status: number, body: unknown): EngineReply {
  const text = JSON.stringify(body);
  return {
    status,
    headers: {
      "content-type": "application/json",
      "content-length": String(Buffer.byteLength(text)),
    },
    body: Readable.from([Buffer.from(text)]),
  };
}

/** An error reply in the club's envelope. */
export function errorReply(status: number, type: ErrorType, message: string): EngineReply {
  return jsonReply(status, envelope(type, message));
}

/** The reply for an endpoint of the model's service type that this engine does not serve. */
export function unsupported(call: EngineCall, engine: string): EngineReply {
  const message = `${engine} does not serve ${call.endpoint.method} ${call.endpoint.path}`;
  return errorReply(404, "not_found_error", message);
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
 * rewriter refuses is answered 400 here; the engine never sees it whole.
 */
export async function forwardForm(
  call: EngineCall,
  path: string,
  rules: FormRules,
  label: EngineLabel,
): Promise<EngineReply> {
  const boundary = formBoundary(call.headers["content-type"]);
  if (!boundary || !call.stream) {
    call.stream?.resume();
    return errorReply(
      400,
      "invalid_request_error",
      `${call.endpoint.path} takes multipart/form-data`,
    );
  }
  const form = new FormRewriter(boundary, rules);
  pipeline(call.stream, form, () => undefined);
  const headers = { ...call.headers, "content-type": form.contentType };
  try {
    return await forwardOpenAI({ ...call, path, headers, stream: form }, label);
  } catch (err) {
    if (form.failure) return errorReply(400, "invalid_request_error", form.failure.message);
    throw err;
  }
}

/** Reads a reply body as text, up to `limit` bytes; undefined when it is longer. */
export async function readText(body: Readable, limit: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > limit) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}
