/**
 * Ollama: recognised by the plain-text `GET /` answer `Ollama is running` (llama.cpp and
 * KoboldCpp also answer `/api/tags`, so that alone proves nothing). Models come from
 * `/api/tags`; each model's capabilities and context window from `POST /api/show`, the loaded
 * context from `/api/ps`. Calls go through its OpenAI surface (`/v1/chat/completions`,
 * `/v1/completions`). Parallelism is set by `OLLAMA_NUM_PARALLEL` only, so it is not reported.
 * See `engines.md` §4.
 */
import type { Adapter, DiscoveredModel, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  badAnswer,
  keyRefused,
  llmModel,
  no,
  openAIEngine,
  optionalJson,
  poolingModel,
  ready,
  refused,
  versionAt,
  type Json,
} from "./kit/engine.ts";
import { arr, obj, posNum, str } from "./kit/fields.ts";
import { getJson, postJson } from "./kit/openai-style.ts";

const BANNER = "Ollama is running";

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const root = await getJson(upstream, "/", signal);
  if (refused(root.status)) return keyRefused(root.status, upstream);
  if (root.status !== 200 || root.text.trim() !== BANNER)
    return no(`GET / answers ${root.status}, not the text "${BANNER}"`);
  return ready(`GET /: "${BANNER}"`);
}

/** One model's card from its `/api/show`, or undefined for a model that neither chats nor embeds. */
function toModel(
  name: string,
  show: Json,
  loadedContext: number | undefined,
): DiscoveredModel | undefined {
  // Builds before capabilities existed list none; such a model at least completes text.
  const caps = Array.isArray(show.capabilities) ? arr(show.capabilities) : ["completion"];
  const info = obj(show.model_info);
  const arch = str(info["general.architecture"]);
  const trained = arch === undefined ? undefined : posNum(info[`${arch}.context_length`]);
  if (!caps.includes("completion"))
    return caps.includes("embedding")
      ? poolingModel({
          servedId: name,
          id: name,
          type: "embedding",
          contextLength: loadedContext ?? trained,
          quantization: str(obj(show.details).quantization_level),
        })
      : undefined;
  return llmModel({
    servedId: name,
    id: name,
    tools: caps.includes("tools"),
    vision: caps.includes("vision"),
    audio: caps.includes("audio"),
    contextLength: loadedContext ?? trained,
    quantization: str(obj(show.details).quantization_level),
  });
}

/** A model's `/api/show`; `{}` (capabilities unknown) when it does not answer, null when gone. */
async function show(upstream: Upstream, name: string, signal: AbortSignal): Promise<Json | null> {
  try {
    const answer = await postJson(upstream, "/api/show", { model: name }, signal);
    if (answer.status === 404) return null;
    return answer.status === 200 ? obj(answer.json) : {};
  } catch {
    return {};
  }
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const tags = await getJson(upstream, "/api/tags", signal);
  if (tags.status !== 200) throw badAnswer("Ollama", upstream, "GET /api/tags", tags);
  const names = arr(obj(tags.json).models)
    .map((m) => str(obj(m).model) ?? str(obj(m).name))
    .filter((n): n is string => n !== undefined && n !== "");
  const [ps, version, shows] = await Promise.all([
    optionalJson(upstream, "/api/ps", signal),
    versionAt(upstream, "/api/version", signal).catch(() => undefined),
    Promise.all(names.map((name) => show(upstream, name, signal))),
  ]);
  const loaded = new Map(
    arr(ps.models).map((m) => [
      str(obj(m).model) ?? str(obj(m).name),
      posNum(obj(m).context_length),
    ]),
  );
  const models = names
    .map((name, i) => {
      const facts = shows[i];
      return facts === null ? undefined : toModel(name, facts ?? {}, loaded.get(name));
    })
    .filter((m): m is DiscoveredModel => m !== undefined);
  return {
    engine: "ollama",
    label: version === undefined ? "Ollama" : `Ollama ${version}`,
    maxConcurrent: null,
    models,
  };
}

/** The Ollama adapter: `GET /` banner; capabilities from `/api/show`; served through `/v1`. */
export default function ollama(): Adapter {
  return openAIEngine({
    name: "ollama",
    displayName: "Ollama",
    hint: "is ollama serve running?",
    defaultPorts: [11434],
    probe,
    describe,
    // Older builds lack /v1/responses; they answer 404 and the call is translated to chat.
    nativeEndpoints: ["/v1/responses", "/v1/embeddings"],
  });
}
