/**
 * speaches (formerly faster-whisper-server): speech to text and text to speech behind an
 * OpenAI-style API (engines.md §7, §8). Recognised by `/v1/models` entries that carry a `task`;
 * `automatic-speech-recognition` models are `stt` with `timestamps` (its verbose_json has
 * segment and word timings per `timestamp_granularities[]`), `text-to-speech` models are
 * `tts`; other tasks (VAD, diarization) are not advertised. speaches lists installed models
 * only, and loads them on first use, so there is no loading state to report.
 */
import type {
  Adapter,
  DiscoveredModel,
  EngineCall,
  EngineReply,
  ProbeResult,
  ServiceInfo,
  Upstream,
} from "./adapter.ts";
import { forwardForm, forwardSpeech, voicesReply } from "./kit/audio.ts";
import { serving } from "./kit/reply.ts";
import { badAnswer } from "./kit/engine.ts";
import { arr, isModelList, obj, readableModelId, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

const LABEL = { name: "speaches", hint: "is speaches running?" };

const TASKS: Record<
  string,
  Pick<DiscoveredModel, "type" | "inputModalities" | "outputModalities" | "features">
> = {
  "automatic-speech-recognition": {
    type: "stt",
    inputModalities: ["audio"],
    outputModalities: ["text"],
    features: ["timestamps"],
  },
  "text-to-speech": {
    type: "tts",
    inputModalities: ["text"],
    outputModalities: ["audio"],
    features: [],
  },
};

function entries(body: unknown): Record<string, unknown>[] {
  return arr(obj(body).data)
    .map(obj)
    .filter((e) => typeof e.id === "string");
}

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const { status, json } = await getJson(upstream, "/v1/models", signal);
  if (status === 401 || status === 403)
    return {
      status: "no",
      reason: upstream.apiKey
        ? `answers ${status} to the configured apiKey: check apiKey for this service`
        : `answers ${status}: if this is speaches with API_KEY set, set apiKey for this service`,
    };
  if (status !== 200 || !isModelList(json))
    return { status: "no", reason: `GET /v1/models answers ${status}` };
  const tasks = entries(json).map((e) => str(e.task));
  if (!tasks.some((t) => t !== undefined))
    return { status: "no", reason: "GET /v1/models: no entry carries a task field (not speaches)" };
  return { status: "ready", reason: "GET /v1/models: entries carry a task field (speaches)" };
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const answer = await getJson(upstream, "/v1/models", signal);
  const { json } = answer;
  if (answer.status !== 200 || !isModelList(json))
    throw badAnswer("speaches", upstream, "GET /v1/models", answer);
  const models = entries(json).flatMap((e): DiscoveredModel[] => {
    const kind = TASKS[str(e.task) ?? ""];
    const servedId = str(e.id) ?? "";
    if (!kind) return [];
    return [
      {
        id: readableModelId(servedId),
        servedId,
        ...kind,
        features: [...kind.features],
        contextLength: null,
      },
    ];
  });
  return { engine: "other", label: "speaches", maxConcurrent: null, models };
}

/** The model's own voices from `GET /v1/models/{id}`, else every installed TTS voice. */
async function voices(call: EngineCall): Promise<EngineReply> {
  const id = call.model.servedId.split("/").map(encodeURIComponent).join("/");
  const own = await voicesReply(call.upstream, `/v1/models/${id}`, call.signal, LABEL.name).catch(
    () => undefined,
  );
  if (own?.status === 200) return own;
  own?.body.resume();
  return voicesReply(call.upstream, "/v1/audio/voices", call.signal, LABEL.name);
}

const served = serving(LABEL.name, {
  // Passed through field by field; only `model` becomes the id speaches knows.
  "/v1/audio/transcriptions": (call) =>
    forwardForm(
      call,
      call.endpoint.path,
      {
        files: ["file"],
        field: (name, value) => [[name, name === "model" ? call.model.servedId : value]],
      },
      LABEL,
    ),
  "/v1/audio/speech": (call) => forwardSpeech(call, LABEL),
  "/v1/audio/voices": voices,
});

/** The speaches adapter: `stt` and `tts` models from one server, by each model's `task`. */
export default function speaches(): Adapter {
  return {
    name: "speaches",
    displayName: "speaches",
    defaultPorts: [8000],
    probe,
    describe,
    ...served,
  };
}
