/**
 * Kokoro-FastAPI (remsky): text to speech. Recognised by `owned_by: "kokoro"` on `/v1/models`
 * and `/health` answering `{"status":"healthy"}` (engines.md §7).
 *
 * Its `/v1/models` lists `tts-1`, `tts-1-hd`, `kokoro` and `gpt-4o-mini-tts`, but all four are
 * names for the same voice engine, so one `tts` model is advertised: `kokoro` (an operator
 * alias can rename it). Speech is forwarded as is, so audio streams as Kokoro produces it
 * (Kokoro's `stream` defaults to true: chunked raw audio, not SSE). Voices come from
 * `GET /v1/audio/voices`, answered as `{"voices":[{id, name, language, gender}]}`.
 * No voice cloning: Kokoro only mixes its own voice packs.
 */
import { UpstreamError } from "../src/errors.ts";
import type {
  Adapter,
  EngineCall,
  EngineReply,
  ProbeResult,
  ServiceInfo,
  Upstream,
} from "./adapter.ts";
import { forwardSpeech, voicesReply, type Voice } from "./kit/audio.ts";
import { serving } from "./kit/reply.ts";
import { arr, firstOwner, obj, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

const LABEL = { name: "Kokoro-FastAPI", hint: "is Kokoro-FastAPI running?" };
const MODEL = "kokoro";

/** Kokoro's voice prefixes: language, then gender (its README; the same table speaches uses). */
const LANGUAGES: Record<string, string> = {
  a: "en-us",
  b: "en-gb",
  e: "es",
  f: "fr-fr",
  h: "hi",
  i: "it",
  j: "ja",
  p: "pt-br",
  z: "zh",
};
const GENDERS: Record<string, string> = { f: "female", m: "male" };

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const models = await getJson(upstream, "/v1/models", signal);
  if (models.status !== 200)
    return { status: "no", reason: `GET /v1/models answers ${models.status}` };
  const owner = firstOwner(models.json);
  if (owner !== "kokoro")
    return {
      status: "no",
      reason:
        owner === undefined
          ? "GET /v1/models: not an OpenAI model list"
          : `GET /v1/models: owned_by is ${JSON.stringify(owner)}, not kokoro`,
    };
  const health = await getJson(upstream, "/health", signal);
  if (health.status === 200 && obj(health.json).status === "healthy")
    return { status: "ready", reason: 'GET /v1/models: owned_by "kokoro"; /health: healthy' };
  // Uvicorn only listens once Kokoro's model is loaded, so the one not-ready state it shows
  // is /health refusing (503 "unhealthy"): keep it as loading, to be retried, not forgotten.
  const why = str(obj(health.json).reason) ?? str(obj(health.json).status) ?? "no status";
  return {
    status: "loading",
    reason: `Kokoro-FastAPI is not healthy yet (GET /health: ${health.status}, ${why})`,
  };
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const models = await getJson(upstream, "/v1/models", signal);
  const ids = arr(obj(models.json).data)
    .map((e) => str(obj(e).id))
    .filter((id): id is string => id !== undefined);
  if (models.status !== 200 || ids.length === 0)
    throw new UpstreamError(
      "upstream_bad_answer",
      `Kokoro-FastAPI at ${upstream.url}: GET /v1/models answers ${models.status} with no models`,
    );
  const servedId = ids.includes(MODEL) ? MODEL : (ids[0] ?? MODEL);
  return {
    engine: "other",
    label: "Kokoro-FastAPI",
    maxConcurrent: null,
    models: [
      {
        id: servedId,
        servedId,
        type: "tts",
        inputModalities: ["text"],
        outputModalities: ["audio"],
        features: [],
        contextLength: null,
      },
    ],
  };
}

/** Language and gender from Kokoro's naming (`af_heart`: American English, female). */
function withTraits(voices: Voice[]): Voice[] {
  return voices.map((v) => {
    const m = /^([a-z])([fm])_/.exec(v.id);
    const language = LANGUAGES[m?.[1] ?? ""];
    const gender = GENDERS[m?.[2] ?? ""];
    return {
      ...v,
      ...(v.language === undefined && language ? { language } : {}),
      ...(v.gender === undefined && gender ? { gender } : {}),
    };
  });
}

async function speech(call: EngineCall): Promise<EngineReply> {
  // These would write files on the rig and name their local paths in a header.
  const { return_download_link: _link, download_format: _format, ...json } = call.json ?? {};
  return forwardSpeech({ ...call, json }, LABEL);
}

const served = serving(LABEL.name, {
  "/v1/audio/speech": speech,
  "/v1/audio/voices": (call) =>
    voicesReply(call.upstream, "/v1/audio/voices", call.signal, LABEL.name, withTraits),
});

/**
 * The Kokoro-FastAPI adapter: one `tts` model, `kokoro`; speech streamed as produced; voices in
 * the club's shape.
 */
export default function kokoro(): Adapter {
  return {
    name: "kokoro",
    displayName: "Kokoro-FastAPI",
    defaultPorts: [8880],
    probe,
    describe,
    ...served,
  };
}
