/**
 * SGLang (`python -m sglang.launch_server`): recognised by `owned_by: "sglang"` on `/v1/models`
 * and confirmed by `GET /get_model_info`. `/v1/models` answers before the server is ready, so
 * readiness comes from `/health` (503 while starting). Vision and audio input from
 * `has_image_understanding` / `has_audio_understanding`, context from `max_model_len`; an
 * embedding server (`is_generation: false`) serves no language model. See `engines.md` §3.
 */
import type { Adapter, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  jsonAt,
  llmModel,
  loading,
  modelEntries,
  no,
  openAIEngine,
  optionalJson,
  ownerVerdict,
  ready,
} from "./kit/engine.ts";
import { posNum, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const other = ownerVerdict(await getJson(upstream, "/v1/models", signal), "sglang", upstream);
  if (other) return other;
  const health = await getJson(upstream, "/health", signal);
  if (health.status === 503) return loading("SGLang is starting (GET /health: 503)");
  const path = str((await jsonAt(upstream, "/get_model_info", signal))?.model_path);
  if (path === undefined) return no('owned_by "sglang", but GET /get_model_info has no model_path');
  return ready(`GET /v1/models: owned_by "sglang"; GET /get_model_info: ${path}`);
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const entries = await modelEntries(upstream, signal, "SGLang");
  const info = await optionalJson(upstream, "/get_model_info", signal);
  return {
    engine: "sglang",
    label: "SGLang",
    maxConcurrent: null,
    models:
      info.is_generation === false
        ? []
        : entries.map((e) =>
            llmModel({
              servedId: str(e.id) ?? "",
              vision: info.has_image_understanding === true,
              audio: info.has_audio_understanding === true,
              contextLength: posNum(e.max_model_len),
            }),
          ),
  };
}

/** The SGLang adapter: `owned_by: "sglang"` plus `/get_model_info`; loading while `/health` is 503. */
export default function sglang(): Adapter {
  return openAIEngine({
    name: "sglang",
    displayName: "SGLang",
    hint: "is sglang.launch_server running?",
    defaultPorts: [30000],
    probe,
    describe,
  });
}
