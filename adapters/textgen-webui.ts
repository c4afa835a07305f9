/**
 * text-generation-webui started with `--api`: recognised by `owned_by: "user"` on `/v1/models`
 * plus `GET /v1/internal/model/info`. It serves the one loaded model (`model_name`, `"None"`
 * until one is loaded, reported as loading); `/v1/models` lists what is on disk. It reports no
 * context length, tool or vision support. See `engines.md` §9.
 */
import type { Adapter, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  badAnswer,
  llmModel,
  loading,
  no,
  openAIEngine,
  ownerVerdict,
  ready,
} from "./kit/engine.ts";
import { obj, str } from "./kit/fields.ts";
import { getJson, type JsonAnswer } from "./kit/openai-style.ts";

/** The loaded model's name, or undefined while none is loaded. */
function loaded(info: JsonAnswer): string | undefined {
  const name = str(obj(info.json).model_name);
  return name === undefined || name === "" || name === "None" ? undefined : name;
}

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const other = ownerVerdict(await getJson(upstream, "/v1/models", signal), "user", upstream);
  if (other) return other;
  const info = await getJson(upstream, "/v1/internal/model/info", signal);
  if (info.status !== 200 || typeof obj(info.json).model_name !== "string")
    return no(`owned_by "user", but GET /v1/internal/model/info answers ${info.status}`);
  const name = loaded(info);
  if (name === undefined) return loading("text-generation-webui has no model loaded yet");
  return ready(`GET /v1/internal/model/info: text-generation-webui with ${name}`);
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const info = await getJson(upstream, "/v1/internal/model/info", signal);
  const name = loaded(info);
  if (info.status !== 200 || name === undefined)
    throw badAnswer("text-generation-webui", upstream, "GET /v1/internal/model/info", info);
  return {
    engine: "other",
    label: "text-generation-webui",
    maxConcurrent: null,
    models: [llmModel({ servedId: name })],
  };
}

/** The text-generation-webui adapter: `owned_by: "user"` plus `/v1/internal/model/info`. */
export default function textgenWebui(): Adapter {
  return openAIEngine({
    name: "textgen",
    displayName: "text-generation-webui",
    hint: "is it running with --api?",
    defaultPorts: [5000],
    probe,
    describe,
  });
}
