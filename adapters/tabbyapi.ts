/**
 * TabbyAPI (ExLlama): recognised by `GET /.well-known/serviceinfo` (`software.name:
 * "TabbyAPI"`), which needs no key. It mimics llama.cpp's `/props` and KoboldCpp's
 * `/api/extra/version`, so neither proves anything. The loaded model's card `GET /v1/model`
 * gives `max_seq_len`, `max_batch_size` and `use_vision`; without a loaded model it answers
 * 400 or 503, reported as loading. See `engines.md` §9.
 */
import type { Adapter, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  badAnswer,
  jsonAt,
  keyRefused,
  llmModel,
  loading,
  no,
  openAIEngine,
  ready,
  refused,
} from "./kit/engine.ts";
import { obj, posNum, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const info = await jsonAt(upstream, "/.well-known/serviceinfo", signal);
  const name = str(obj(info?.software).name);
  if (name !== "TabbyAPI")
    return no(
      info === undefined
        ? "GET /.well-known/serviceinfo does not answer"
        : `GET /.well-known/serviceinfo names ${JSON.stringify(name ?? null)}, not TabbyAPI`,
    );
  const card = await getJson(upstream, "/v1/model", signal);
  if (refused(card.status)) return keyRefused(card.status, upstream, "TabbyAPI");
  if (card.status === 400 || card.status === 503)
    return loading(`TabbyAPI has no model loaded yet (GET /v1/model: ${card.status})`);
  if (card.status !== 200) return no(`TabbyAPI: GET /v1/model answers ${card.status}`);
  return ready(`GET /.well-known/serviceinfo: TabbyAPI; model ${str(obj(card.json).id) ?? "?"}`);
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  // The loaded model serves; /v1/models lists every model on disk to an admin key.
  const card = await getJson(upstream, "/v1/model", signal);
  const id = str(obj(card.json).id);
  if (card.status !== 200 || id === undefined)
    throw badAnswer("TabbyAPI", upstream, "GET /v1/model", card);
  const params = obj(obj(card.json).parameters);
  return {
    engine: "other",
    label: "TabbyAPI",
    maxConcurrent: posNum(params.max_batch_size) ?? null,
    models: [
      llmModel({
        servedId: id,
        vision: params.use_vision === true,
        contextLength: posNum(params.max_seq_len),
      }),
    ],
  };
}

/** The TabbyAPI adapter: `/.well-known/serviceinfo`; context and batch size from `/v1/model`. */
export default function tabbyapi(): Adapter {
  return openAIEngine({
    name: "tabbyapi",
    displayName: "TabbyAPI",
    hint: "is TabbyAPI running?",
    defaultPorts: [5000],
    probe,
    describe,
  });
}
