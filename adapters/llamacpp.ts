/**
 * llama.cpp's `llama-server`: recognised by `owned_by: "llamacpp"` on `/v1/models`, described
 * from `/v1/models` plus `/props`, forwarded as plain OpenAI. See `engines.md` §1 and the
 * recorded responses in `llama-server-captures.md`.
 */
import { UpstreamError } from "../src/errors.ts";
import type { Feature, ServiceType } from "../src/protocol/index.ts";
import type { Adapter, DiscoveredModel, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import { arr, errorMessage, firstOwner, obj, posNum, readableModelId, str } from "./kit/fields.ts";
import { poolingModel } from "./kit/engine.ts";
import { poolingType } from "./llamacpp/pooling.ts";
import { forwardOpenAI, getJson } from "./kit/openai-style.ts";

const LABEL = { name: "llama.cpp", hint: "is llama-server running?" };

type Json = Record<string, unknown>;

function no(reason: string): ProbeResult {
  return { status: "no", reason };
}

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const models = await getJson(upstream, "/v1/models", signal);
  const fromLlama = models.headers.server === "llama.cpp";
  if (models.status === 200) {
    const owner = firstOwner(models.json);
    if (owner === undefined) return no("GET /v1/models: not an OpenAI model list");
    if (owner !== "llamacpp")
      return no(`GET /v1/models: owned_by is ${JSON.stringify(owner)}, not llamacpp`);
    // /v1/models answers while the model loads (with `meta: null`); /health tells.
    const health = await getJson(upstream, "/health", signal);
    if (health.status === 503)
      return { status: "loading", reason: "llama.cpp is loading its model (GET /health: 503)" };
    const evidence =
      fromLlama || health.headers.server === "llama.cpp" ? ", Server: llama.cpp" : "";
    return { status: "ready", reason: `GET /v1/models: owned_by "llamacpp"${evidence}` };
  }
  // Older builds answer 503 "Loading model" on every path but /health while loading.
  if (models.status === 503 && fromLlama)
    return { status: "loading", reason: "llama.cpp is loading its model (GET /v1/models: 503)" };
  if (models.status === 401 || models.status === 403) {
    const health = await getJson(upstream, "/health", signal);
    if (!fromLlama && health.headers.server !== "llama.cpp")
      return no(`GET /v1/models answers ${models.status} and /health is not llama.cpp's`);
    return no(
      upstream.apiKey
        ? `llama.cpp refuses the configured apiKey (${models.status}): check apiKey for this service`
        : "llama.cpp answers but wants an API key: set apiKey for this service",
    );
  }
  return no(`GET /v1/models answers ${models.status}`);
}

/** Facts about one model gathered from its `/v1/models` entry and the matching `/props`. */
function toModel(entry: Json, props: Json, listing: Json, type: ServiceType): DiscoveredModel {
  const servedId = str(entry.id) ?? "";
  const meta = obj(entry.meta);
  if (type === "embedding" || type === "rerank")
    return poolingModel({
      servedId,
      type,
      contextLength: posNum(obj(props.default_generation_settings).n_ctx) ?? posNum(meta.n_ctx),
      quantization: str(meta.ftype) ?? str(props.model_ftype),
    });
  const modalities = obj(props.modalities);
  const inputs = arr(obj(entry.architecture).input_modalities);
  const ollama = arr(listing.models).map(obj);
  const legacy = ollama.find((m) => m.model === servedId || m.name === servedId);
  const vision =
    modalities.vision === true ||
    inputs.includes("image") ||
    arr(legacy?.capabilities).includes("multimodal");
  const audio = modalities.audio === true || inputs.includes("audio");
  const caps = obj(props.chat_template_caps);
  const tools = caps.supports_tools === true || typeof props.chat_template_tool_use === "string";
  const features: Feature[] = ["streaming"];
  if (tools) features.push("tool-use");
  if (vision) features.push("vision");
  const model: DiscoveredModel = {
    id: readableModelId(servedId),
    servedId,
    type: "llm",
    inputModalities: ["text", ...(vision ? ["image"] : []), ...(audio ? ["audio"] : [])],
    outputModalities: ["text"],
    features,
    contextLength:
      posNum(obj(props.default_generation_settings).n_ctx) ??
      posNum(meta.n_ctx) ??
      posNum(meta.n_ctx_train) ??
      null,
  };
  const quantization = str(meta.ftype) ?? str(props.model_ftype);
  if (quantization) model.quantization = quantization;
  return model;
}

/** `/props` as JSON, or `{}` when the server will not say (no key, router without `?model=`). */
async function props(upstream: Upstream, path: string, signal: AbortSignal): Promise<Json> {
  try {
    const answer = await getJson(upstream, path, signal);
    return answer.status === 200 ? obj(answer.json) : {};
  } catch {
    return {};
  }
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const models = await getJson(upstream, "/v1/models", signal);
  if (models.status !== 200)
    throw new UpstreamError(
      "upstream_bad_answer",
      `llama.cpp at ${upstream.url}: GET /v1/models answers ${models.status}` +
        (errorMessage(models.json) ? ` (${String(errorMessage(models.json))})` : ""),
    );
  const listing = obj(models.json);
  const entries = arr(listing.data)
    .map(obj)
    .filter((e) => typeof e.id === "string");
  // Router mode (no -m): entries carry `status.value`; /props needs `?model=` there.
  const router = entries.some((e) => typeof obj(e.status).value === "string");
  if (!router) {
    const [p, type] = await Promise.all([
      props(upstream, "/props", signal),
      poolingType(upstream, signal),
    ]);
    const build = str(p.build_info);
    return {
      engine: "llamacpp",
      label: build ? `llama.cpp ${build}` : "llama.cpp",
      maxConcurrent: posNum(p.total_slots) ?? null,
      models: entries.map((e) => toModel(e, p, listing, type)),
    };
  }
  const usable = entries.filter((e) => obj(e.status).failed !== true);
  const loaded = (e: Json) => obj(e.status).value === "loaded";
  const perModel = await Promise.all(
    usable.map((e) =>
      loaded(e)
        ? props(upstream, `/props?model=${encodeURIComponent(str(e.id) ?? "")}`, signal)
        : Promise.resolve<Json>({}),
    ),
  );
  // Only loaded models are asked: a request for an unloaded one would load it. Until it is
  // loaded, a model counts as a language model.
  const types = await Promise.all(
    usable.map((e) =>
      loaded(e) ? poolingType(upstream, signal, str(e.id)) : Promise.resolve<ServiceType>("llm"),
    ),
  );
  const build = perModel.map((p) => str(p.build_info)).find(Boolean);
  return {
    engine: "llamacpp",
    label: build ? `llama.cpp ${build} (router)` : "llama.cpp (router)",
    // Slots are per loaded model in router mode; the operator's config has to say.
    maxConcurrent: null,
    models: usable.map((e, i) => toModel(e, perModel[i] ?? {}, listing, types[i] ?? "llm")),
  };
}

/** What llama-server serves itself (build b1-80fb11a's route table; embeddings and rerank need flags). */
const NATIVE = [
  "/v1/responses",
  "/v1/messages",
  "/v1/messages/count_tokens",
  "/v1/embeddings",
  "/v1/rerank",
];

/**
 * The llama.cpp adapter. Probes `/v1/models` (`owned_by: "llamacpp"`) and `/health` (503 while
 * loading); describes tools, vision, context and slots from `/props`.
 */
export default function llamacpp(): Adapter {
  return {
    name: "llamacpp",
    displayName: "llama.cpp llama-server",
    defaultPorts: [8080, 9931],
    probe,
    describe,
    execute: (call) => forwardOpenAI(call, LABEL),
    nativeEndpoints: NATIVE,
  };
}
