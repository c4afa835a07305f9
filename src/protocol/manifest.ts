/**
 * The service manifest a provider advertises, schema version 1: the hosted club's
 * shape (`shared/reference/club-platform.md` §1.3), so a relay can store it as is.
 * Local URLs and upstream keys are deliberately absent: they never leave the rig.
 */

/**
 * The club's service types; each maps to one family of public endpoints. `embedding` and
 * `rerank` extend the hosted platform's list (docs/protocol.md §4).
 */
export const SERVICE_TYPES = [
  "llm",
  "stt",
  "tts",
  "image",
  "mesh",
  "music",
  "video",
  "embedding",
  "rerank",
] as const;
export type ServiceType = (typeof SERVICE_TYPES)[number];

/** Engines the hosted schema knows; anything else is advertised as `other`. */
export const MANIFEST_ENGINES = [
  "vllm",
  "lmstudio",
  "ollama",
  "sglang",
  "llamacpp",
  "tgi",
  "other",
] as const;
export type ManifestEngine = (typeof MANIFEST_ENGINES)[number];

/** Capability flags the club's `/v1/models` exposes in `supported_features`. */
export const FEATURES = ["streaming", "tool-use", "vision", "timestamps", "voice-cloning"] as const;
export type Feature = (typeof FEATURES)[number];

/**
 * Who may use a service or model besides its owner: nobody (`private`, the default), every
 * member of the relay (`club`), or the members named. Member names are the relay's (keys file).
 */
export type Access = "private" | "club" | string[];

/** Most members one access list may name. */
export const MAX_ACCESS_MEMBERS = 256;

/** Whether `member` may use what has `access` on a rig owned by `owner`. */
export function accessAllows(access: Access | undefined, owner: string, member: string): boolean {
  if (member === owner) return true;
  if (access === "club") return true;
  return Array.isArray(access) && access.includes(member);
}

/** How an access setting reads to people: `private`, `club`, or `bob,carol`. */
export function describeAccess(access: Access | undefined): string {
  return Array.isArray(access) ? access.join(",") : (access ?? "private");
}

export interface ManifestModel {
  /** The id consumers ask for (the served id, possibly an operator alias). */
  id: string;
  name?: string;
  input_modalities: string[];
  output_modalities: string[];
  features: Feature[];
  context_length: number | null;
  quantization?: string;
  /** Who besides the owner may use it; its service's setting when absent. */
  access?: Access;
  /** A model of an engine the daemon starts on demand: that engine's state now. */
  state?: EngineState;
}

/** States of an engine the daemon manages (`engines` setting). */
export const ENGINE_STATES = ["stopped", "starting", "ready", "stopping", "failed"] as const;
export type EngineState = (typeof ENGINE_STATES)[number];

export interface ManifestService {
  name: string;
  engine: ManifestEngine;
  type: ServiceType;
  features: Feature[];
  max_concurrent: number;
  resource_group?: string;
  /** Who besides the owner may use the service's models; `private` when absent. */
  access?: Access;
  models: ManifestModel[];
}

export interface ManifestGpu {
  vendor: "nvidia" | "amd" | "apple" | "intel";
  model: string;
  vram_gb: number;
  index: number;
}

export interface ManifestHost {
  id: string;
  hostname?: string;
  gpus: ManifestGpu[];
  services: ManifestService[];
}

export interface Manifest {
  schema_version: 1;
  agent: { name: string };
  hosts: ManifestHost[];
}

/** Default modalities per service type (the hosted platform's `_SERVICE_TYPE_MODALITIES`). */
export const SERVICE_TYPE_MODALITIES: Record<ServiceType, { input: string[]; output: string[] }> = {
  llm: { input: ["text"], output: ["text"] },
  stt: { input: ["audio"], output: ["text"] },
  tts: { input: ["text"], output: ["audio"] },
  image: { input: ["text", "image"], output: ["image"] },
  mesh: { input: ["image"], output: ["model"] },
  music: { input: ["text"], output: ["audio"] },
  video: { input: ["text", "image"], output: ["video"] },
  embedding: { input: ["text"], output: ["embedding"] },
  rerank: { input: ["text"], output: ["score"] },
};

/** A model card as the club's public `GET /v1/models` lists it. */
export interface ModelCard {
  id: string;
  object: "model";
  created: number;
  owned_by: string;
  service_type: ServiceType;
  input_modalities: string[];
  output_modalities: string[];
  supported_features: Feature[];
  context_length: number | null;
}

/** Every model card a manifest advertises; a service's features apply to all its models. */
export function manifestCards(manifest: Manifest, created: number): ModelCard[] {
  const cards: ModelCard[] = [];
  const seen = new Set<string>();
  for (const host of manifest.hosts) {
    for (const service of host.services) {
      for (const model of service.models) {
        if (seen.has(model.id)) continue;
        seen.add(model.id);
        cards.push({
          id: model.id,
          object: "model",
          created,
          owned_by: manifest.agent.name,
          service_type: service.type,
          input_modalities: model.input_modalities,
          output_modalities: model.output_modalities,
          supported_features: [...new Set([...model.features, ...service.features])],
          context_length: model.context_length,
        });
      }
    }
  }
  return cards;
}

/**
 * Each advertised model's access: its own setting, else its service's, else `private`. The
 * first service that lists an id decides it, as in `manifestCards`.
 */
export function manifestAccess(manifest: Manifest): Map<string, Access> {
  const out = new Map<string, Access>();
  for (const host of manifest.hosts)
    for (const service of host.services)
      for (const model of service.models)
        if (!out.has(model.id)) out.set(model.id, model.access ?? service.access ?? "private");
  return out;
}
