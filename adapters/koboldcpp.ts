/**
 * KoboldCpp: recognised by `owned_by: "koboldcpp"` on `/v1/models` and confirmed by
 * `GET /api/extra/version` (`result: "KoboldCpp"`). Both are needed: TabbyAPI answers
 * `/api/extra/version` as KoboldCpp for Kobold clients. `/api/extra/version` also says whether
 * a `--password` protects generation (`protected`) and whether the model sees images (`vision`);
 * the context is `/api/extra/true_max_context_length`. See `engines.md` §9.
 */
import type { Adapter, ProbeResult, ServiceInfo, Upstream } from "./adapter.ts";
import {
  jsonAt,
  llmModel,
  modelEntries,
  no,
  openAIEngine,
  optionalJson,
  ownerVerdict,
  ready,
} from "./kit/engine.ts";
import { posNum, str } from "./kit/fields.ts";
import { getJson } from "./kit/openai-style.ts";

/** What `/api/v1/model` names instead of the model when the password is missing or wrong. */
const HIDDEN = "koboldcpp/protected-model";

async function probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult> {
  const other = ownerVerdict(await getJson(upstream, "/v1/models", signal), "koboldcpp", upstream);
  if (other) return other;
  const version = await jsonAt(upstream, "/api/extra/version", signal);
  if (version?.result !== "KoboldCpp")
    return no('owned_by "koboldcpp", but GET /api/extra/version is not KoboldCpp\'s');
  const seen = `KoboldCpp ${str(version.version) ?? ""}`.trim();
  if (version.protected === true) {
    // The model list stays public; /api/v1/model hides the name from a wrong password.
    if (!upstream.apiKey) return no(`${seen} has a --password: set apiKey for this service to it`);
    const model = await jsonAt(upstream, "/api/v1/model", signal);
    if (model?.result === HIDDEN)
      return no(`${seen} refuses the configured apiKey: check apiKey for this service`);
  }
  return ready(`GET /v1/models: owned_by "koboldcpp"; GET /api/extra/version: ${seen}`);
}

async function describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo> {
  const entries = await modelEntries(upstream, signal, "KoboldCpp");
  const [version, context] = await Promise.all([
    optionalJson(upstream, "/api/extra/version", signal),
    optionalJson(upstream, "/api/extra/true_max_context_length", signal),
  ]);
  return {
    engine: "other",
    label: `KoboldCpp ${str(version.version) ?? ""}`.trim(),
    // One generation at a time; further requests queue inside KoboldCpp.
    maxConcurrent: null,
    models: entries.map((e) => {
      const servedId = str(e.id) ?? "";
      return llmModel({
        servedId,
        id: servedId.replace(/^koboldcpp\//, ""),
        vision: version.vision === true,
        contextLength: posNum(context.value),
      });
    }),
  };
}

/** The KoboldCpp adapter: `owned_by: "koboldcpp"` plus `/api/extra/version`. */
export default function koboldcpp(): Adapter {
  return openAIEngine({
    name: "koboldcpp",
    displayName: "KoboldCpp",
    hint: "is koboldcpp running?",
    defaultPorts: [5001],
    probe,
    describe,
  });
}
