/**
 * whisper.cpp's `whisper-server`: speech to text through its own `POST /inference` (engines.md
 * §8). Recognised by the `Server: whisper.cpp` header every answer carries; `/health` is 503
 * `{"status":"loading model"}` while a model loads. It serves one model and runs one request
 * at a time (a global mutex), so it advertises one `stt` model, `whisper` (an operator alias
 * renames it), with `maxConcurrent` 1.
 *
 * The club's transcription form is translated, not forwarded: `file` streams through, and only
 * `response_format`, `language`, `prompt`, `temperature` and `timestamp_granularities[]` (`word`
 * → `token_timestamps=true`) reach the engine; no other whisper.cpp field can be set by a
 * request. Replies are shaped like OpenAI's: `text` trimmed, and for verbose_json with word
 * granularity a top-level `words[]` built from the per-segment tokens whisper.cpp reports.
 * Without `language` whisper.cpp uses its `-l` (default `en`), not OpenAI's auto-detection:
 * start it with `-l auto` for that. It must serve the default `--inference-path /inference`
 * (a `--request-path` prefix goes in the service URL).
 */
import { Readable } from "node:stream";
import { readCapped } from "../src/http/read-capped.ts";
import { UpstreamError } from "../src/errors.ts";
import type {
  Adapter,
  EngineCall,
  EngineReply,
  ProbeResult,
  ServiceInfo,
  Upstream,
} from "./adapter.ts";
import { forwardForm } from "./kit/audio.ts";
import { errorReply, jsonReply, serving } from "./kit/reply.ts";
import { arr, obj, str } from "./kit/fields.ts";
import { FormError, type FormRules } from "./kit/multipart.ts";
import { getJson } from "./kit/openai-style.ts";

const LABEL = { name: "whisper.cpp", hint: "is whisper-server running?" };
const FORMATS = ["json", "text", "srt", "vtt", "verbose_json"];
/** whisper.cpp answers text as `text/html` and srt as `application/x-subrip`; OpenAI uses these. */
const TEXT_TYPES: Record<string, string> = {
  text: "text/plain; charset=utf-8",
  srt: "text/plain; charset=utf-8",
  vtt: "text/vtt; charset=utf-8",
};
const NUMBER = /^-?\d+(\.\d+)?$/;
/** A verbose_json of hours of audio stays far below this. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const health = await getJson(upstream, "/health", signal);
  if (health.headers.server !== "whisper.cpp")
    return { status: "no", reason: "GET /health: no Server: whisper.cpp header" };
  if (health.status === 200) return { status: "ready", reason: "Server: whisper.cpp; /health: ok" };
  const why = str(obj(health.json).status) ?? `answers ${health.status}`;
  return { status: "loading", reason: `whisper.cpp is not ready (GET /health: ${why})` };
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const health = await getJson(upstream, "/health", signal);
  if (health.status !== 200)
    throw new UpstreamError(
      "upstream_bad_answer",
      `whisper.cpp at ${upstream.url}: GET /health answers ${health.status}`,
    );
  return {
    engine: "other",
    label: "whisper.cpp whisper-server",
    maxConcurrent: 1,
    models: [
      {
        id: "whisper",
        servedId: "whisper",
        type: "stt",
        inputModalities: ["audio"],
        outputModalities: ["text"],
        features: ["timestamps"],
        contextLength: null,
      },
    ],
  };
}

/** The form rules for one request, remembering what the reply has to be shaped for. */
function translation(): FormRules & { format: string; words: boolean } {
  const seen = new Set<string>();
  const rules = {
    format: "json",
    words: false,
    files: ["file"],
    field(name: string, value: string): [string, string][] {
      if (seen.has(name) && name !== "timestamp_granularities[]")
        throw new FormError("form_malformed", `form field "${name}" is sent more than once`);
      seen.add(name);
      switch (name) {
        case "response_format":
          if (!FORMATS.includes(value))
            throw new FormError(
              "form_rejected",
              `response_format must be one of ${FORMATS.join(", ")}`,
            );
          rules.format = value;
          return [[name, value]];
        case "language":
        case "prompt":
          return [[name, value]];
        case "temperature":
          if (!NUMBER.test(value.trim()))
            throw new FormError(
              "form_rejected",
              `temperature must be a number, got ${JSON.stringify(value)}`,
            );
          return [[name, value.trim()]];
        case "timestamp_granularities[]":
          if (value !== "word" && value !== "segment")
            throw new FormError("form_rejected", "timestamp_granularities[] takes word or segment");
          if (value !== "word" || rules.words) return [];
          rules.words = true;
          return [["token_timestamps", "true"]];
        default:
          return []; // model, stream, and anything whisper.cpp should not be told
      }
    },
    // OpenAI's default is json: say so rather than rely on whisper.cpp's.
    end: (): [string, string][] =>
      seen.has("response_format") ? [] : [["response_format", "json"]],
  };
  return rules;
}

/**
 * OpenAI's `words[]` from whisper.cpp's per-segment tokens: a token without a leading space
 * continues the word before it (` Hel` `lo` `,` is `Hello,`).
 */
function words(segments: unknown[]): { word: string; start: number; end: number }[] {
  const out: { word: string; start: number; end: number }[] = [];
  for (const token of segments.flatMap((s) => arr(obj(s).words)).map(obj)) {
    const text = str(token.word) ?? "";
    const { start, end } = token;
    if (typeof start !== "number" || typeof end !== "number") continue;
    const last = out.at(-1);
    if (last && !/^\s/.test(text)) {
      last.word += text;
      last.end = end;
    } else out.push({ word: text, start, end });
  }
  return out.map((w) => ({ ...w, word: w.word.trim() })).filter((w) => w.word !== "");
}

/** Reshapes a 200 answer for `format`; anything else passes through. */
async function shape(reply: EngineReply, format: string, wantWords: boolean): Promise<EngineReply> {
  if (reply.status !== 200) return reply;
  const type = TEXT_TYPES[format];
  if (type) return { ...reply, headers: { ...reply.headers, "content-type": type } };
  const text = (await readCapped(reply.body, MAX_ANSWER_BYTES))?.toString("utf8");
  if (text === undefined)
    return errorReply(502, "upstream_error", "whisper.cpp answered with more than 16 MiB of JSON");
  let body: Record<string, unknown> | undefined;
  try {
    body = obj(JSON.parse(text));
  } catch {
    body = undefined;
  }
  if (body === undefined || typeof body.text !== "string") {
    const raw = Buffer.from(text);
    const headers = { ...reply.headers, "content-length": String(raw.length) };
    return { status: reply.status, headers, body: Readable.from([raw]) };
  }
  body.text = body.text.trim();
  if (format === "verbose_json" && wantWords) body.words = words(arr(body.segments));
  return jsonReply(200, body);
}

async function transcribe(call: EngineCall): Promise<EngineReply> {
  const rules = translation();
  const reply = await forwardForm(call, "/inference", rules, LABEL);
  return shape(reply, rules.format, rules.words);
}

/** The whisper.cpp adapter: one `stt` model with timestamps, one request at a time. */
export default function whispercpp(): Adapter {
  return {
    name: "whispercpp",
    displayName: "whisper.cpp whisper-server",
    defaultPorts: [8080, 9931],
    probe,
    describe,
    ...serving("whisper.cpp whisper-server", { "/v1/audio/transcriptions": transcribe }),
  };
}
