/**
 * Dia-TTS-Server's side of `voice/generations`: the club's request (`input`, `speakers`,
 * `cfg_scale`, `temperature`, `seed`, an `audio_prompt` to clone and its `audio_prompt_text`)
 * as the body of its `POST /tts` (its server.py `CustomTTSRequest`): `voice_mode` `clone` with
 * the uploaded clip, `predefined` with one of the server's own voices, else `dialogue` for a
 * script with `[S1]`/`[S2]` tags and `single_s1` otherwise. Output is always WAV.
 */
import { obj, str } from "../kit/fields.ts";
import { badRequest } from "../../src/http/error.ts";

/** One of the server's predefined voices (`GET /get_predefined_voices`). */
export interface DiaVoice {
  display_name: string;
  filename: string;
}

type Rule = [min: number, max: number, integer: boolean];

/** Club field → Dia field, with ranges a little wider than Dia's own defaults use. */
const NUMBERS: Record<string, [string, Rule]> = {
  cfg_scale: ["cfg_scale", [0, 20, false]],
  temperature: ["temperature", [0, 5, false]],
  top_p: ["top_p", [0, 1, false]],
  cfg_filter_top_k: ["cfg_filter_top_k", [1, 10_000, true]],
  speed_factor: ["speed_factor", [0.1, 5, false]],
  seed: ["seed", [-1, 2 ** 32 - 1, true]],
  max_new_tokens: ["max_tokens", [1, 1_000_000, true]],
};

const MAX_TEXT = 20_000;

/** The predefined voice `name` names (display name or file name, any case), if any. */
export function findVoice(voices: DiaVoice[], name: string): DiaVoice | undefined {
  const wanted = name.trim().toLowerCase();
  return voices.find(
    (v) => v.display_name.toLowerCase() === wanted || v.filename.toLowerCase() === wanted,
  );
}

/** The voices of a `/get_predefined_voices` answer. */
export function readVoices(json: unknown): DiaVoice[] {
  return (Array.isArray(json) ? json : [])
    .map(obj)
    .map((v) => ({ display_name: str(v.display_name) ?? "", filename: str(v.filename) ?? "" }))
    .filter((v) => v.filename !== "");
}

/** The text of a voice request: `input` (the club's public field) or `text`. */
export function scriptOf(json: Record<string, unknown>): string {
  const text = json.input ?? json.text;
  if (typeof text !== "string" || text.trim() === "")
    throw badRequest(`"input" is required: the script, with [S1]/[S2] speaker tags`);
  if (text.length > MAX_TEXT) throw badRequest(`"input" is longer than ${MAX_TEXT}`);
  return text;
}

/** The one predefined voice `speakers` names, or undefined when it names none. */
export async function speakerVoice(
  speakers: unknown,
  voices: () => Promise<DiaVoice[]>,
): Promise<DiaVoice | undefined> {
  if (speakers === undefined || speakers === null) return undefined;
  const entries = Object.entries(obj(speakers));
  if (typeof speakers !== "object" || Array.isArray(speakers) || entries.length === 0)
    throw badRequest(`"speakers" must map S1 (or S2) to a voice`);
  if (entries.length > 1)
    throw badRequest(
      `Dia clones one voice per request: name one speaker, or send both in one "audio_prompt"`,
    );
  const [tag, value] = entries[0] ?? [];
  if (tag !== "S1" && tag !== "S2") throw badRequest(`"speakers" keys are S1 and S2`);
  if (typeof value !== "string")
    throw badRequest(
      `"speakers.${tag}": voice-library ids belong to the hosted club; on this rig name a voice ` +
        `of GET /v1/audio/voices, or send "audio_prompt"`,
    );
  const list = await voices();
  const voice = findVoice(list, value);
  if (!voice) {
    const names = list.map((v) => v.display_name).join(", ") || "none";
    throw badRequest(
      `"speakers.${tag}": no voice ${JSON.stringify(value)}; this server has ${names}`,
    );
  }
  return voice;
}

/**
 * The `/tts` body for `json`, given the voice to use: a clip uploaded for it (`clone`), one of
 * the server's voices (`predefined`), or none.
 */
export function ttsBody(
  json: Record<string, unknown>,
  voice: { clone: string } | { predefined: DiaVoice } | undefined,
): Record<string, unknown> {
  const text = scriptOf(json);
  const body: Record<string, unknown> = { text, output_format: "wav" };
  for (const [field, [target, [min, max, integer]]] of Object.entries(NUMBERS)) {
    const value = json[field];
    if (value === undefined || value === null) continue;
    if (
      typeof value !== "number" ||
      (integer && !Number.isInteger(value)) ||
      value < min ||
      value > max
    )
      throw badRequest(`"${field}" must be a number from ${min} to ${max}`);
    body[target] = value;
  }
  if (voice && "clone" in voice) {
    body.voice_mode = "clone";
    body.clone_reference_filename = voice.clone;
    const transcript = json.audio_prompt_text;
    if (typeof transcript === "string" && transcript.trim() !== "") body.transcript = transcript;
  } else if (voice) {
    body.voice_mode = "predefined";
    body.clone_reference_filename = voice.predefined.filename;
  } else body.voice_mode = /\[S[12]\]/.test(text) ? "dialogue" : "single_s1";
  return body;
}
