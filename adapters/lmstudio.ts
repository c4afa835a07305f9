/**
 * LM Studio's server: recognised by `owned_by: "organization_owner"` on `/v1/models` and
 * confirmed by its native REST API. Capabilities from `GET /api/v1/models` (≥ 0.4.0:
 * `capabilities.vision`, `capabilities.trained_for_tool_use`, loaded instances' context and
 * `parallel`), else `GET /api/v0/models` (≥ 0.3.6: `type: vlm`, `max_context_length`), else the
 * bare OpenAI list. See `engines.md` §5.
 */
import type { Adapter, DiscoveredModel, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  jsonAt,
  llmModel,
  modelEntries,
  no,
  openAIEngine,
  ownerVerdict,
  ready,
  type Json,
} from "./kit/engine.ts";
import { arr, obj, posNum, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const models = await getJson(upstream, "/v1/models", signal);
  const other = ownerVerdict(models, "organization_owner", upstream);
  if (other) return other;
  if (Array.isArray((await jsonAt(upstream, "/api/v1/models", signal))?.models))
    return ready('GET /v1/models: owned_by "organization_owner"; GET /api/v1/models answers');
  if (Array.isArray((await jsonAt(upstream, "/api/v0/models", signal))?.data))
    return ready('GET /v1/models: owned_by "organization_owner"; GET /api/v0/models answers');
  return no('owned_by "organization_owner", but neither /api/v1/models nor /api/v0/models answers');
}

/** The v1 listing (≥ 0.4.0): language models only, with the loaded instances' settings. */
function fromV1(listing: Json): { models: DiscoveredModel[]; parallel: number[] } {
  const llms = arr(listing.models)
    .map(obj)
    .filter((m) => m.type === "llm" && typeof m.key === "string");
  const configs = (m: Json): Json[] => arr(m.loaded_instances).map((i) => obj(obj(i).config));
  const models = llms.map((m) => {
    const caps = obj(m.capabilities);
    return llmModel({
      servedId: str(m.key) ?? "",
      tools: caps.trained_for_tool_use === true,
      vision: caps.vision === true,
      contextLength: posNum(configs(m)[0]?.context_length) ?? posNum(m.max_context_length),
      quantization: str(obj(m.quantization).name),
    });
  });
  const parallel = llms.flatMap((m) => configs(m).map((c) => posNum(c.parallel) ?? 0));
  return { models, parallel };
}

/** The v0 listing (0.3.6 to 0.3.x): `type` says vision; tool use is not reported. */
function fromV0(listing: Json): DiscoveredModel[] {
  return arr(listing.data)
    .map(obj)
    .filter((m) => (m.type === "llm" || m.type === "vlm") && typeof m.id === "string")
    .map((m) =>
      llmModel({
        servedId: str(m.id) ?? "",
        vision: m.type === "vlm",
        contextLength: posNum(m.max_context_length),
        quantization: str(m.quantization),
      }),
    );
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const base = { engine: "lmstudio", label: "LM Studio" } as const;
  const v1 = await jsonAt(upstream, "/api/v1/models", signal).catch(() => undefined);
  if (Array.isArray(v1?.models)) {
    const { models, parallel } = fromV1(v1);
    // Each loaded instance has its own slots; the largest is a safe bound for the service.
    const most = Math.max(0, ...parallel);
    return { ...base, maxConcurrent: most > 0 ? most : null, models };
  }
  const v0 = await jsonAt(upstream, "/api/v0/models", signal).catch(() => undefined);
  if (Array.isArray(v0?.data)) return { ...base, maxConcurrent: null, models: fromV0(v0) };
  const entries = await modelEntries(upstream, signal, "LM Studio");
  return {
    ...base,
    maxConcurrent: null,
    models: entries.map((e) => llmModel({ servedId: str(e.id) ?? "" })),
  };
}

/** The LM Studio adapter: `owned_by: "organization_owner"` plus its native `/api/v1|v0/models`. */
export default function lmstudio(): Adapter {
  return openAIEngine({
    name: "lmstudio",
    displayName: "LM Studio",
    hint: "is the LM Studio server started (lms server start)?",
    defaultPorts: [1234],
    probe,
    describe,
  });
}
