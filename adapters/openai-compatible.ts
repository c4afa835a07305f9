/**
 * Any server that answers `GET /v1/models` with an OpenAI model list: vLLM, SGLang, LM Studio,
 * LocalAI, TabbyAPI and the like. The catch-all, probed after the engines we know better.
 */
import { UpstreamError } from "../src/errors.ts";
import type { ManifestEngine } from "../src/protocol/index.ts";
import type { Adapter, DiscoveredModel, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  arr,
  errorMessage,
  firstOwner,
  isModelList,
  obj,
  posNum,
  readableModelId,
  str,
} from "./kit/fields.ts";
import { forwardOpenAI, getJson } from "./kit/openai-style.ts";

const LABEL = { name: "the OpenAI-compatible server", hint: "is it running?" };

/** `owned_by` values that name an engine the manifest schema knows (engines.md §10). */
const OWNERS: Record<string, { engine: ManifestEngine; label: string }> = {
  vllm: { engine: "vllm", label: "vLLM" },
  sglang: { engine: "sglang", label: "SGLang" },
  organization_owner: { engine: "lmstudio", label: "LM Studio" },
  llamacpp: { engine: "llamacpp", label: "llama.cpp" },
};

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const { status, json } = await getJson(upstream, "/v1/models", signal);
  if (status === 200 && isModelList(json)) {
    const owner = firstOwner(json);
    const by = owner === undefined ? "" : `, owned_by ${JSON.stringify(owner)}`;
    return { status: "ready", reason: `GET /v1/models: an OpenAI model list${by}` };
  }
  if (status === 401 || status === 403)
    return {
      status: "no",
      reason: upstream.apiKey
        ? `answers ${status} to the configured apiKey: check apiKey for this service`
        : `answers ${status}: set apiKey for this service`,
    };
  if (status === 503)
    return { status: "loading", reason: "GET /v1/models answers 503: the server is starting" };
  if (status === 200) return { status: "no", reason: "GET /v1/models: not an OpenAI model list" };
  return { status: "no", reason: `GET /v1/models answers ${status}` };
}

function toModel(entry: Record<string, unknown>): DiscoveredModel {
  const servedId = str(entry.id) ?? "";
  return {
    id: readableModelId(servedId),
    servedId,
    type: "llm",
    inputModalities: ["text"],
    outputModalities: ["text"],
    features: ["streaming"],
    contextLength:
      posNum(entry.max_model_len) ??
      posNum(entry.context_length) ??
      posNum(obj(entry.meta).n_ctx) ??
      null,
  };
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const { status, json } = await getJson(upstream, "/v1/models", signal);
  if (status !== 200 || !isModelList(json)) {
    const why = errorMessage(json);
    throw new UpstreamError(
      "upstream_bad_answer",
      `${upstream.url}: GET /v1/models answers ${status}${why ? ` (${why})` : ""}`,
    );
  }
  const owner = firstOwner(json) ?? "";
  const known = OWNERS[owner];
  return {
    engine: known?.engine ?? "other",
    label: known ? `${known.label} (OpenAI-compatible)` : `OpenAI-compatible (owned_by "${owner}")`,
    maxConcurrent: null,
    models: arr(obj(json).data)
      .map(obj)
      .filter((e) => typeof e.id === "string")
      .map(toModel),
  };
}

/** The generic OpenAI-compatible adapter: one `llm` model per `/v1/models` entry. */
export default function openaiCompatible(): Adapter {
  return {
    name: "openai",
    displayName: "OpenAI-compatible server",
    defaultPorts: [],
    probe,
    describe,
    execute: (call) => forwardOpenAI(call, LABEL),
  };
}
