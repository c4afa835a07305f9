/**
 * LocalAI: recognised by its public discovery document `GET /.well-known/localai.json` (an
 * `endpoints` object), or on builds without one by `GET /readyz` plus `GET /version`. `/readyz`
 * answers 503 while it starts. Its `/v1/models` lists every model, speech and image ones too, and
 * has no `owned_by`; `GET /v1/models/capabilities` says which chat and what they accept.
 * See `engines.md` §9.
 */
import type { Adapter, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  jsonAt,
  keyRefused,
  llmModel,
  loading,
  modelEntries,
  no,
  openAIEngine,
  ready,
  refused,
  versionAt,
} from "./kit/engine.ts";
import { arr, isModelList, obj, posNum, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

/** LocalAI's version from the discovery document, or from `/readyz` + `/version` on older builds. */
async function identify(
  upstream: Upstream,
  signal: AbortSignal,
): Promise<{ version: string; starting: boolean } | undefined> {
  const doc = await jsonAt(upstream, "/.well-known/localai.json", signal);
  const readyz = await getJson(upstream, "/readyz", signal);
  const starting = readyz.status === 503;
  if (typeof doc?.endpoints === "object" && doc.endpoints !== null)
    return { version: str(doc.version) ?? "", starting };
  if (readyz.status !== 200 && !starting) return undefined;
  const version = await versionAt(upstream, "/version", signal);
  return version === undefined ? undefined : { version, starting };
}

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const found = await identify(upstream, signal);
  if (!found) return no("no /.well-known/localai.json, and no /readyz with /version");
  const seen = `LocalAI ${found.version}`.trim();
  if (found.starting) return loading(`${seen} is starting (GET /readyz: 503)`);
  const models = await getJson(upstream, "/v1/models", signal);
  if (refused(models.status)) return keyRefused(models.status, upstream, seen);
  if (models.status !== 200 || !isModelList(models.json))
    return no(`${seen}: GET /v1/models answers ${models.status}`);
  return ready(`GET /.well-known/localai.json: ${seen}`);
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const version = (await identify(upstream, signal).catch(() => undefined))?.version ?? "";
  const base = {
    engine: "other",
    label: `LocalAI ${version}`.trim(),
    maxConcurrent: null,
  } as const;
  const listing = await jsonAt(upstream, "/v1/models/capabilities", signal).catch(() => undefined);
  if (Array.isArray(listing?.data)) {
    const models = arr(listing.data)
      .map(obj)
      .filter((m) => typeof m.id === "string")
      .filter((m) => arr(m.capabilities).some((c) => c === "chat" || c === "completion"))
      .map((m) => {
        const caps = arr(m.capabilities);
        const inputs = arr(m.input_modalities);
        return llmModel({
          servedId: str(m.id) ?? "",
          tools: caps.includes("tools"),
          vision: caps.includes("vision") || inputs.includes("image"),
          audio: inputs.includes("audio"),
          contextLength: posNum(m.context_size),
        });
      });
    return { ...base, models };
  }
  // Builds before /v1/models/capabilities cannot say which models chat: list them all.
  const entries = await modelEntries(upstream, signal, "LocalAI");
  return { ...base, models: entries.map((e) => llmModel({ servedId: str(e.id) ?? "" })) };
}

/** The LocalAI adapter: `/.well-known/localai.json` (or `/readyz` + `/version`). */
export default function localai(): Adapter {
  return openAIEngine({
    name: "localai",
    displayName: "LocalAI",
    hint: "is local-ai running?",
    defaultPorts: [8080],
    probe,
    describe,
  });
}
