/**
 * The catalog: every local service the daemon knows, with its state and models, and the
 * manifest and model cards it advertises. `discover` builds a fresh one on every scan.
 */
import type { Adapter, DiscoveredModel, ServiceInfo, Upstream } from "../../adapters/adapter.ts";
import type { ComfyUISettings } from "../../adapters/comfyui/settings.ts";
import { adapters as allAdapters } from "../../adapters/index.ts";
import { silentLogger, type Logger } from "../log.ts";
import {
  manifestAccess,
  manifestCards,
  type Access,
  type EngineState,
  type Feature,
  type Manifest,
  type ManifestGpu,
  type ManifestModel,
  type ManifestService,
  type ModelCard,
} from "../protocol/index.ts";
import { PROBE_TIMEOUT_MS } from "./probe.ts";
import { autodetectCandidates, resolveService } from "./services.ts";

/** A model card as the rig itself lists it (`models`, `/status`): with its sharing. */
export type RigModelCard = ModelCard & { access: Access; state?: EngineState };

/** One `services:` entry of the config, already validated. */
export interface ServiceConfig {
  url: string;
  /** Adapter name (`llamacpp`, `openai`); probed with every adapter when absent. */
  engine?: string;
  apiKey?: string;
  name?: string;
  /** Advertised id → the engine's served id (or the id derived from it); replaces the derived id. */
  aliases?: Record<string, string>;
  maxConcurrent?: number;
  /** Services on one GPU share a group: their requests queue together (`resourceGroups` sizes it). */
  resourceGroup?: string;
  /** ComfyUI only: where the operator's workflow files are (an absolute path). */
  comfyui?: ComfyUISettings;
}

/** A local service as the daemon sees it. Only `ready` services are advertised. */
export interface Service {
  /** The config's name, else `<adapter>-<port>`. */
  name: string;
  /** The adapter that recognised it; for an unrecognised service, the best guess by port. */
  adapter: Adapter;
  upstream: Upstream;
  /** What `describe` said (aliases applied); null unless `ready`. */
  info: ServiceInfo | null;
  status: "ready" | "loading" | "down";
  /** Why it has this status, for `detect` and `models`. */
  reason: string;
  /** Parallel requests to send it: config `maxConcurrent`, else what the engine reports, else 1. */
  maxConcurrent: number;
  /** The resource group from config; a service without one is a group of its own. */
  resourceGroup?: string;
  /** A managed engine (`engines` setting): its state, advertised with each model. */
  engineState?: EngineState;
}

function commonFeatures(models: DiscoveredModel[]): Feature[] {
  const [first, ...rest] = models;
  return (first?.features ?? []).filter((f) => rest.every((m) => m.features.includes(f)));
}

function manifestModel(
  model: DiscoveredModel,
  access: Access | undefined,
  state: EngineState | undefined,
): ManifestModel {
  const out: ManifestModel = {
    id: model.id,
    input_modalities: model.inputModalities,
    output_modalities: model.outputModalities,
    features: model.features,
    context_length: model.contextLength,
  };
  if (model.quantization !== undefined) out.quantization = model.quantization;
  if (access !== undefined) out.access = access;
  if (state !== undefined) out.state = state;
  return out;
}

/** The services found by one scan, with look-ups for the gateway and the manifest for the relay. */
export class Catalog {
  constructor(readonly services: Service[]) {}

  /** Services that serve now. */
  get ready(): Service[] {
    return this.services.filter((s) => s.status === "ready" && s.info !== null);
  }

  /** The ready service and model for an advertised id; the first service wins on duplicates. */
  find(modelId: string): { service: Service; model: DiscoveredModel } | undefined {
    return this.findAll(modelId)[0];
  }

  /**
   * Every ready service that serves an advertised id, in scan order: two engines may load the
   * same model (one per GPU), and the gateway sends each request to one that has room.
   */
  findAll(modelId: string): { service: Service; model: DiscoveredModel }[] {
    const found: { service: Service; model: DiscoveredModel }[] = [];
    for (const service of this.ready) {
      const model = service.info?.models.find((m) => m.id === modelId);
      if (model) found.push({ service, model });
    }
    return found;
  }

  /**
   * The manifest (schema 1) of this rig: one host, ready services with at least one model. A
   * manifest service has one type, so a service serving several (speaches: stt and tts) is
   * listed once per type, as `<name>` for its first type and `<name>-<type>` for the others.
   * `gpus` becomes the host's `gpus[]` (static facts; live figures ride on heartbeats).
   * `sharing` (model id or service name → access) sets each service's and model's `access`.
   */
  manifest(
    agentName: string,
    hostId: string,
    hostname?: string,
    gpus: readonly ManifestGpu[] = [],
    sharing: Readonly<Record<string, Access>> = {},
  ): Manifest {
    const services: ManifestService[] = [];
    for (const service of this.ready) {
      const info = service.info;
      if (!info || info.models.length === 0) continue;
      const types = [...new Set(info.models.map((m) => m.type))];
      for (const [i, type] of types.entries()) {
        const models = info.models.filter((m) => m.type === type);
        const name = i === 0 ? service.name : `${service.name}-${type}`;
        const access = sharing[name] ?? sharing[service.name];
        services.push({
          name,
          engine: info.engine,
          type,
          features: commonFeatures(models),
          max_concurrent: service.maxConcurrent,
          ...(service.resourceGroup ? { resource_group: service.resourceGroup } : {}),
          ...(access ? { access } : {}),
          models: models.map((m) => manifestModel(m, sharing[m.id], service.engineState)),
        });
      }
    }
    const host = { id: hostId, gpus: [...gpus], services };
    return {
      schema_version: 1,
      agent: { name: agentName },
      hosts: [hostname === undefined ? host : { ...host, hostname }],
    };
  }

  /**
   * The model cards this rig advertises, as the club's `GET /v1/models` lists them, each with
   * who besides the owner may use it.
   */
  cards(
    providerName: string,
    created: number,
    sharing: Readonly<Record<string, Access>> = {},
  ): RigModelCard[] {
    const manifest = this.manifest(providerName, "local", undefined, [], sharing);
    const access = manifestAccess(manifest);
    const states = new Map<string, EngineState>();
    for (const s of manifest.hosts[0]?.services ?? [])
      for (const m of s.models) if (m.state && !states.has(m.id)) states.set(m.id, m.state);
    return manifestCards(manifest, created).map((c) => {
      const state = states.get(c.id);
      return { ...c, access: access.get(c.id) ?? "private", ...(state ? { state } : {}) };
    });
  }
}

export interface DiscoverOptions {
  services: ServiceConfig[];
  /** Also probe every adapter's default ports on `host`. */
  autodetect: boolean;
  /** Host for auto-detection; default `127.0.0.1`. */
  host?: string;
  /** Ports to auto-detect instead of the adapters' defaults (tests, or a wider scan). */
  ports?: readonly number[];
  /** Time each probe may take; default 1.5 s. */
  timeoutMs?: number;
  /** Adapters to use, in priority order; all known ones by default. */
  adapters?: readonly Adapter[];
  log?: Logger;
}

/**
 * Probes configured services and, with `autodetect`, the default ports, all in parallel, then
 * describes the ready ones. Configured services that are down or loading stay in the catalog
 * with a reason; auto-detected URLs appear only when an engine answers there. Cheap enough to
 * call every scan (pools keep their connections) and never rejects for an unreachable engine.
 * @example
 * const catalog = await discover({ services: [{ url: "http://127.0.0.1:8080" }], autodetect: true });
 * for (const s of catalog.services) console.log(s.name, s.status, s.reason);
 */
export async function discover(options: DiscoverOptions): Promise<Catalog> {
  const ctx = {
    adapters: options.adapters ?? allAdapters,
    timeoutMs: options.timeoutMs ?? PROBE_TIMEOUT_MS,
    log: options.log ?? silentLogger,
  };
  const configured = options.services.map((config) => resolveService({ config }, ctx));
  const detected = options.autodetect
    ? autodetectCandidates(options, ctx.adapters).map((url) => resolveService({ url }, ctx))
    : [];
  const services = (await Promise.all([...configured, ...detected])).filter(
    (s): s is Service => s !== undefined,
  );
  for (const s of services) ctx.log.debug({ service: s.name, status: s.status }, s.reason);
  return new Catalog(services);
}
