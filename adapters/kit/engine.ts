/**
 * Small pieces the OpenAI-speaking engine adapters share: probe verdicts, the `owned_by` gate of
 * `/v1/models`, model lists and model cards, and the adapter shell that forwards as OpenAI.
 */
import { UpstreamError } from "../../src/errors.ts";
import { SERVICE_TYPE_MODALITIES, type Feature } from "../../src/protocol/index.ts";
import type { Adapter, DiscoveredModel, ProbeResult, Upstream } from "../adapter.ts";
import { arr, errorMessage, firstOwner, isModelList, obj, readableModelId, str } from "./fields.ts";
import { forwardOpenAI, getJson, type JsonAnswer } from "./openai-style.ts";

/** A JSON object as the adapters read it. */
export type Json = Record<string, unknown>;

/** A `ready` verdict. */
export const ready = (reason: string): ProbeResult => ({ status: "ready", reason });
/** A `loading` verdict: this engine, not serving yet. */
export const loading = (reason: string): ProbeResult => ({ status: "loading", reason });
/** A `no` verdict: not this engine, or not usable as configured. */
export const no = (reason: string): ProbeResult => ({ status: "no", reason });

/** True for the statuses that mean "a key is missing or wrong". */
export function refused(status: number): boolean {
  return status === 401 || status === 403;
}

/**
 * The verdict for a 401 or 403: set a key, or check the one configured. `who` names the engine
 * when something public already told which it is.
 * @example keyRefused(401, { url }, "vLLM") // no: "vLLM answers 401: set apiKey for this service"
 */
export function keyRefused(status: number, upstream: Upstream, who?: string): ProbeResult {
  const subject = who === undefined ? "answers" : `${who} answers`;
  return no(
    upstream.apiKey
      ? `${subject} ${status} to the configured apiKey: check apiKey for this service`
      : `${subject} ${status}: set apiKey for this service`,
  );
}

/**
 * Checks a `GET /v1/models` answer for an engine known by its `owned_by`. Returns the `no`
 * verdict to give, or undefined when it is a model list owned by `owner`.
 */
export function ownerVerdict(
  answer: JsonAnswer,
  owner: string,
  upstream: Upstream,
): ProbeResult | undefined {
  if (refused(answer.status)) return keyRefused(answer.status, upstream);
  if (answer.status !== 200) return no(`GET /v1/models answers ${answer.status}`);
  if (!isModelList(answer.json)) return no("GET /v1/models: not an OpenAI model list");
  const seen = firstOwner(answer.json);
  if (seen === owner) return undefined;
  const what = seen === undefined ? "absent" : JSON.stringify(seen);
  return no(`GET /v1/models: owned_by is ${what}, not ${owner}`);
}

/** The JSON object at `path` when it answers 200, else undefined (timeouts still reject). */
export async function jsonAt(
  upstream: Upstream,
  path: string,
  signal: AbortSignal,
): Promise<Json | undefined> {
  const answer = await getJson(upstream, path, signal);
  return answer.status === 200 && typeof answer.json === "object" && answer.json !== null
    ? obj(answer.json)
    : undefined;
}

/** Like `jsonAt`, but any failure (refusal, timeout, garbage) reads as `{}`: for optional facts. */
export async function optionalJson(
  upstream: Upstream,
  path: string,
  signal: AbortSignal,
): Promise<Json> {
  try {
    return (await jsonAt(upstream, path, signal)) ?? {};
  } catch {
    return {};
  }
}

/** The error `describe` throws when an engine's listing is unusable. */
export function badAnswer(
  engine: string,
  upstream: Upstream,
  what: string,
  answer: JsonAnswer,
): UpstreamError {
  const why = errorMessage(answer.json);
  return new UpstreamError(
    "upstream_bad_answer",
    `${engine} at ${upstream.url}: ${what} answers ${answer.status}${why ? ` (${why})` : ""}`,
  );
}

/** The entries with a string `id` of `GET /v1/models`; rejects when it is not a model list. */
export async function modelEntries(
  upstream: Upstream,
  signal: AbortSignal,
  engine: string,
): Promise<Json[]> {
  const answer = await getJson(upstream, "/v1/models", signal);
  if (answer.status !== 200 || !isModelList(answer.json))
    throw badAnswer(engine, upstream, "GET /v1/models", answer);
  return arr(obj(answer.json).data)
    .map(obj)
    .filter((e) => typeof e.id === "string" && e.id !== "");
}

/** What an engine says about one of its language models. */
export interface LlmFacts {
  servedId: string;
  /** Advertised id; derived from `servedId` when absent. */
  id?: string;
  tools?: boolean;
  vision?: boolean;
  audio?: boolean;
  contextLength?: number | undefined;
  quantization?: string | undefined;
}

/**
 * The club's card for a language model: streaming always (every engine here streams SSE), and
 * tool use, vision and audio input only where the engine itself says so.
 * @example llmModel({ servedId: "qwen3:8b", tools: true, contextLength: 40960 })
 */
export function llmModel(facts: LlmFacts): DiscoveredModel {
  const features: Feature[] = ["streaming"];
  if (facts.tools === true) features.push("tool-use");
  if (facts.vision === true) features.push("vision");
  const model: DiscoveredModel = {
    id: facts.id ?? readableModelId(facts.servedId),
    servedId: facts.servedId,
    type: "llm",
    inputModalities: [
      "text",
      ...(facts.vision === true ? ["image"] : []),
      ...(facts.audio === true ? ["audio"] : []),
    ],
    outputModalities: ["text"],
    features,
    contextLength: facts.contextLength ?? null,
  };
  if (facts.quantization) model.quantization = facts.quantization;
  return model;
}

/** What an engine says about one of its embedding or rerank models. */
export interface PoolingFacts {
  servedId: string;
  id?: string;
  type: "embedding" | "rerank";
  contextLength?: number | undefined;
  quantization?: string | undefined;
}

/**
 * The club's card for an embedding or rerank model: text in, vectors or scores out, nothing to
 * stream (`SERVICE_TYPE_MODALITIES`).
 * @example poolingModel({ servedId: "nomic-embed-text:latest", type: "embedding" })
 */
export function poolingModel(facts: PoolingFacts): DiscoveredModel {
  const model: DiscoveredModel = {
    id: facts.id ?? readableModelId(facts.servedId),
    servedId: facts.servedId,
    type: facts.type,
    inputModalities: [...SERVICE_TYPE_MODALITIES[facts.type].input],
    outputModalities: [...SERVICE_TYPE_MODALITIES[facts.type].output],
    features: [],
    contextLength: facts.contextLength ?? null,
  };
  if (facts.quantization) model.quantization = facts.quantization;
  return model;
}

/** A `version` string from a `{"version": "…"}` answer, e.g. vLLM's `/version`. */
export async function versionAt(
  upstream: Upstream,
  path: string,
  signal: AbortSignal,
): Promise<string | undefined> {
  return str((await jsonAt(upstream, path, signal))?.version);
}

/** An engine adapter without `execute`, plus the hint its connection errors give. */
export interface OpenAIEngineSpec extends Omit<Adapter, "execute"> {
  /** Ends "cannot reach <displayName> at <url> (…): <hint>". */
  hint: string;
}

/**
 * An adapter for an engine served through its OpenAI surface: `execute` forwards the call as is.
 * @example
 * export default function vllm(): Adapter {
 *   return openAIEngine({ name: "vllm", displayName: "vLLM", hint: "is vllm serve running?", … });
 * }
 */
export function openAIEngine(spec: OpenAIEngineSpec): Adapter {
  const { hint, ...adapter } = spec;
  const label = { name: spec.displayName, hint };
  return { ...adapter, execute: (call) => forwardOpenAI(call, label) };
}
