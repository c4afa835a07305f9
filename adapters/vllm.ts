/**
 * vLLM's OpenAI server (`vllm serve`): recognised by `owned_by: "vllm"` on `/v1/models` and
 * confirmed by `GET /version`. While it loads weights it accepts connections and answers
 * nothing, so a probe that times out reports it as loading (`silentWhileLoading`). Only
 * `max_model_len` is exposed: tool calling and vision depend on launch flags and the model,
 * which the API does not report, so they are not advertised. See `engines.md` §2.
 */
import type { Adapter, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  keyRefused,
  llmModel,
  modelEntries,
  optionalJson,
  poolingModel,
  no,
  openAIEngine,
  ownerVerdict,
  ready,
  refused,
  versionAt,
} from "./kit/engine.ts";
import { obj, posNum, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const models = await getJson(upstream, "/v1/models", signal);
  if (refused(models.status)) {
    // Only /v1 paths want the key; /version still says whether it is vLLM.
    const version = await versionAt(upstream, "/version", signal);
    return keyRefused(models.status, upstream, version === undefined ? undefined : "vLLM");
  }
  const other = ownerVerdict(models, "vllm", upstream);
  if (other) return other;
  const version = await versionAt(upstream, "/version", signal);
  if (version === undefined) return no('owned_by "vllm", but GET /version has no "version"');
  const health = await getJson(upstream, "/health", signal);
  if (health.status === 503)
    return no(`vLLM ${version}: its engine is dead (GET /health: 503): restart vllm serve`);
  return ready(`GET /v1/models: owned_by "vllm"; GET /version: ${version}`);
}

/**
 * What the served model is for. vLLM mounts its routes by the model's tasks (generate, embed,
 * score), and its FastAPI app lists the routes mounted in `GET /openapi.json`: no chat route and
 * `/v1/embeddings` is an embedding model, no chat route and `/v1/rerank` a reranker. A server
 * that does not list its routes (`--disable-fastapi-docs`) counts as a language model.
 */
async function servedType(
  upstream: Upstream,
  signal: AbortSignal,
): Promise<"llm" | "embedding" | "rerank"> {
  const paths = obj((await optionalJson(upstream, "/openapi.json", signal)).paths);
  if (Object.keys(paths).length === 0 || "/v1/chat/completions" in paths) return "llm";
  if ("/v1/embeddings" in paths) return "embedding";
  if ("/v1/rerank" in paths) return "rerank";
  return "llm";
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const entries = await modelEntries(upstream, signal, "vLLM");
  const [version, type] = await Promise.all([
    versionAt(upstream, "/version", signal).catch(() => undefined),
    servedType(upstream, signal),
  ]);
  const maxLen = new Map(entries.map((e) => [str(e.id), posNum(e.max_model_len)]));
  return {
    engine: "vllm",
    label: version === undefined ? "vLLM" : `vLLM ${version}`,
    // Continuous batching; vLLM reports no fixed limit (only `/load`, the current load).
    maxConcurrent: null,
    models: entries.map((e) =>
      type !== "llm"
        ? poolingModel({ servedId: str(e.id) ?? "", type, contextLength: posNum(e.max_model_len) })
        : llmModel({
            servedId: str(e.id) ?? "",
            // A LoRA adapter's card has no max_model_len; it runs on its `parent`'s context.
            contextLength: posNum(e.max_model_len) ?? maxLen.get(str(e.parent)),
          }),
    ),
  };
}

/** The vLLM adapter: `owned_by: "vllm"` plus `/version`; context from `max_model_len`. */
export default function vllm(): Adapter {
  return openAIEngine({
    name: "vllm",
    displayName: "vLLM",
    hint: "is vllm serve running?",
    defaultPorts: [8000],
    silentWhileLoading: true,
    probe,
    describe,
    nativeEndpoints: ["/v1/responses", "/v1/embeddings", "/v1/rerank"],
  });
}
