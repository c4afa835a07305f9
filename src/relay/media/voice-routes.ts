/**
 * The voice library's routes, one implementation under two paths: the hosted club's
 * `/api/inference/voice-samples/` and `/v1/voice/samples`. `GET` lists the member's samples,
 * `POST` (multipart: `file`, `name`, `transcript`, optional `visibility` PRIVATE or PUBLIC)
 * uploads one, `DELETE …/{id}` removes one. `resolveSpeakers` turns the sample ids of a
 * `voice/generations` call into the clip and transcript the provider's engine clones from.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { readBody } from "../../http/body.ts";
import { boundaryOf } from "../../http/multipart.ts";
import { sendJson } from "../../http/respond.ts";
import { joinWav, readClip } from "./audio-header.ts";
import { readForm } from "./form.ts";
import { shown } from "./sharing.ts";
import { type MediaLimits } from "./types.ts";
import { HttpError } from "../../http/error.ts";
import type { VoiceLibrary, VoiceSample } from "./voices.ts";

const PREFIXES = ["/api/inference/voice-samples", "/v1/voice/samples"];

/** Whether `path` is one of the voice library's. */
export function isVoicePath(path: string): boolean {
  return PREFIXES.some((p) => path === p || path.startsWith(`${p}/`));
}

function view(s: VoiceSample) {
  return {
    id: s.id,
    object: "voice_sample",
    name: s.name,
    transcript: s.transcript,
    content_type: s.contentType,
    bytes: s.bytes,
    duration_seconds: s.durationMs / 1000,
    visibility: s.visibility,
    created: Math.floor(s.created / 1000),
  };
}

const bad = (message: string): HttpError => new HttpError(400, "invalid_request_error", message);
const notFound = (id: unknown): HttpError =>
  new HttpError(
    404,
    "not_found_error",
    `no voice sample ${shown(id)} in your library or the club's public ones`,
  );

/** Answers a request under the voice library's paths. */
export async function voiceRoutes(
  voices: VoiceLibrary,
  limits: MediaLimits,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  member: string,
): Promise<void> {
  const method = req.method ?? "GET";
  const prefix = PREFIXES.find((p) => url.pathname === p || url.pathname.startsWith(`${p}/`)) ?? "";
  const rest = url.pathname.slice(prefix.length).replace(/^\/|\/$/g, "");
  if (rest === "" && method === "GET") {
    req.resume();
    sendJson(res, 200, { object: "list", data: voices.list(member).map(view) });
    return;
  }
  if (rest === "" && method === "POST") {
    sendJson(res, 201, view(await upload(voices, limits, req, member)));
    return;
  }
  req.resume();
  if (rest !== "" && method === "DELETE") {
    const sample = /^\d{1,15}$/.test(rest) ? voices.own(member, Number(rest)) : undefined;
    if (!sample) throw notFound(rest);
    await voices.remove(sample);
    sendJson(res, 200, { id: sample.id, object: "voice_sample", deleted: true });
    return;
  }
  throw new HttpError(405, "invalid_request_error", `${method} is not allowed on ${url.pathname}`);
}

async function upload(
  voices: VoiceLibrary,
  limits: MediaLimits,
  req: IncomingMessage,
  member: string,
): Promise<VoiceSample> {
  const boundary = boundaryOf(req.headers["content-type"]);
  if (!boundary) {
    req.resume();
    throw bad("a voice sample is uploaded as multipart/form-data: file, name, transcript");
  }
  if (voices.list(member).length >= limits.voiceMaxPerMember) {
    req.resume();
    throw new HttpError(
      403,
      "permission_error",
      `you keep ${limits.voiceMaxPerMember} voice samples, the most this relay allows: delete one first`,
      { code: "voice_samples_full", expose: true },
    );
  }
  // The form may be a little larger than its clip: the other fields and the boundaries.
  const body = await readBody(req, limits.voiceMaxBytes + 64 * 1024);
  const parts = readForm(body, boundary);
  const field = (name: string): string | undefined => {
    const p = parts.find((x) => x.name === name && x.filename === undefined);
    return p?.data.toString("utf8").trim();
  };
  const file = parts.find((p) => p.name === "file");
  if (!file) throw bad(`"file" is required: the clip (WAV, MP3 or FLAC)`);
  if (file.data.length > limits.voiceMaxBytes)
    throw new HttpError(
      413,
      "request_too_large",
      `"file" is larger than ${limits.voiceMaxBytes} bytes`,
    );
  const info = readClip(file.data);
  if (!info) throw bad(`"file" is not a WAV, MP3 or FLAC clip (read from its header)`);
  if (info.durationMs <= 0 || info.durationMs > limits.voiceMaxSeconds * 1000)
    throw bad(
      `"file" is ${info.durationMs / 1000} s long; a voice sample is up to ${limits.voiceMaxSeconds} s`,
    );
  const name = field("name");
  if (!name || name.length > 100) throw bad(`"name" is required: 1 to 100 characters`);
  const transcript = field("transcript");
  if (!transcript || transcript.length > 2000)
    throw bad(`"transcript" is required: what the clip says, 1 to 2000 characters`);
  const visibility = field("visibility") ?? "PRIVATE";
  if (visibility !== "PRIVATE" && visibility !== "PUBLIC")
    throw bad(`"visibility" of a voice sample must be PRIVATE or PUBLIC; got ${shown(visibility)}`);
  return voices.add(file.data, {
    member,
    name,
    transcript,
    contentType: info.contentType,
    durationMs: info.durationMs,
    visibility,
  });
}

/**
 * A `voice/generations` body with its sample ids resolved: `speakers` mapping S1 (and S2) to
 * integer ids becomes `audio_prompt` (the clip, base64; two speakers' WAV clips joined) and
 * `audio_prompt_text` (the transcripts, tagged), the shape the daemon's Dia adapter clones
 * from. A body whose speakers name voices by name (a rig's own voices) is left as it is.
 */
export async function resolveSpeakers(
  voices: VoiceLibrary,
  member: string,
  json: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const speakers = json.speakers;
  if (speakers === undefined || speakers === null) return json;
  if (typeof speakers !== "object" || Array.isArray(speakers))
    throw bad(`"speakers" must map S1 (and S2) to voice sample ids`);
  const entries = Object.entries(speakers as Record<string, unknown>);
  if (entries.length === 0) throw bad(`"speakers" must map S1 (and S2) to voice sample ids`);
  if (entries.every(([, v]) => typeof v === "string")) return json;
  const samples: [string, VoiceSample][] = [];
  for (const [tag, id] of entries) {
    if (tag !== "S1" && tag !== "S2") throw bad(`"speakers" keys are S1 and S2; got ${shown(tag)}`);
    if (typeof id !== "number" || !Number.isInteger(id) || id < 1)
      throw bad(
        `"speakers.${tag}" must be a voice sample id (a positive integer); got ${shown(id)}`,
      );
    const sample = voices.usable(member, id);
    if (!sample) throw notFound(id);
    samples.push([tag, sample]);
  }
  if (json.audio_prompt !== undefined) throw bad(`send "speakers" or "audio_prompt", not both`);
  samples.sort(([a], [b]) => a.localeCompare(b));
  const clips = await Promise.all(samples.map(([, s]) => voices.clip(s)));
  const clip = clips.length === 1 ? clips[0] : joinWav(clips);
  if (!clip)
    throw bad(
      `"speakers": two speakers' clips are joined only when both are WAV of the same format`,
    );
  const { speakers: _speakers, ...rest } = json;
  return {
    ...rest,
    audio_prompt: clip.toString("base64"),
    audio_prompt_text: samples.map(([tag, s]) => `[${tag}] ${s.transcript}`).join(" "),
  };
}
