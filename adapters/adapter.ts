/**
 * The one small interface every engine implements. An adapter recognises its server at a
 * URL, describes the models it serves in the club's terms, and executes one call, streamed
 * and abortable. Adapters know nothing of the tunnel or the relay.
 */
import type { Readable } from "node:stream";
import type { Endpoint, Feature, ManifestEngine, ServiceType } from "../src/protocol/index.ts";

/** A local server: where it is and the key it wants, both from config or detection. */
export interface Upstream {
  /** Base URL without a trailing slash, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Key the engine requires (`--api-key`); sent as `Authorization: Bearer`. */
  apiKey?: string;
  /**
   * Engine-specific sections of the service's config entry, by adapter name
   * (`{ comfyui: { workflowsDir } }`); each adapter reads and types only its own.
   */
  settings?: Readonly<Record<string, unknown>>;
}

/** What a probe concluded about one URL. `reason` is shown by `club-provider detect`. */
export interface ProbeResult {
  /** `ready`: this engine answers; `loading`: it is this engine but not serving yet; `no`: not it. */
  status: "ready" | "loading" | "no";
  reason: string;
}

/** One model a service serves, in the club's terms. */
export interface DiscoveredModel {
  /** The id consumers ask for: an operator alias, or derived from the engine's id. */
  id: string;
  /** The id the engine expects in request bodies. */
  servedId: string;
  type: ServiceType;
  inputModalities: string[];
  outputModalities: string[];
  features: Feature[];
  contextLength: number | null;
  quantization?: string;
}

/** A recognised service and its models. */
export interface ServiceInfo {
  engine: ManifestEngine;
  /** Human-readable engine and version, e.g. `llama.cpp b1-80fb11a`. */
  label: string;
  /** Parallel requests the engine itself reports (llama.cpp slots); null when it does not say. */
  maxConcurrent: number | null;
  models: DiscoveredModel[];
  /** What the operator should know, shown with the service (ComfyUI: workflows skipped, why). */
  notes?: string[];
}

/** One inference call, already routed to a model of this adapter's service. */
export interface EngineCall {
  endpoint: Endpoint;
  /** Public path with query, e.g. `/v1/chat/completions` or `/v1/audio/voices?model=kokoro`. */
  path: string;
  /** Content negotiation headers only (`content-type`, `accept`); never auth or hop-by-hop. */
  headers: Record<string, string>;
  /** Parsed JSON body for JSON endpoints, with `model` already set to the served id. */
  json?: Record<string, unknown>;
  /** Raw body for other endpoints (multipart, bytes). */
  stream?: Readable;
  model: DiscoveredModel;
  upstream: Upstream;
  signal: AbortSignal;
  /**
   * Reports how far a long job got, for the daemon's status: `fraction` in [0, 1], or null
   * when the engine does not say; `detail` in a few words (`queued`, `KSampler 12/30`).
   */
  progress?: (fraction: number | null, detail?: string) => void;
}

/** The engine's answer, to be streamed back as is. */
export interface EngineReply {
  status: number;
  headers: Record<string, string>;
  /**
   * The answer's bytes: a byte stream whose chunks are Buffers, never an object-mode stream of
   * strings (`Readable.from(strings, { objectMode: false })` makes one from text).
   */
  body: Readable;
}

/**
 * Executes one call routed to an endpoint the adapter serves. May reject with an `HttpError`
 * (`src/http/error.ts`) for a request it refuses, answered with that error's status.
 */
export type Handler = (call: EngineCall) => Promise<EngineReply>;

export interface Adapter {
  /** Stable name used in config (`engine: llamacpp`). */
  readonly name: string;
  /** Shown to people: `llama.cpp llama-server`. */
  readonly displayName: string;
  /** Ports the engine listens on by default; probed when auto-detection is on. */
  readonly defaultPorts: readonly number[];
  /**
   * The engine accepts connections but answers nothing while it loads its model (vLLM). A probe
   * that times out is then reported as loading, when this is the configured engine or the URL
   * is on one of its default ports.
   */
  readonly silentWhileLoading?: boolean;
  /**
   * Recognise this engine at a URL. Must honour `signal` (servers that hang while loading exist).
   * Rejects with an `UpstreamError` (`upstream_unreachable`, `upstream_timeout`) when nothing
   * answers at all, so callers can stop trying other adapters; any answer is a `ProbeResult`.
   */
  probe(upstream: Upstream, signal: AbortSignal): Promise<ProbeResult>;
  /** List the models with their capabilities. Called after a `ready` probe. */
  describe(upstream: Upstream, signal: AbortSignal): Promise<ServiceInfo>;
  /**
   * Execute one call. Resolves once the engine has answered with a status; the body streams.
   * Rejects with an `UpstreamError` when the engine cannot be reached.
   */
  execute: Handler;
  /**
   * The public paths the engine serves (see `serving` in `adapters/kit/reply.ts`). A call to
   * another path of its models' service type is answered 404 by the gateway, which never calls
   * `execute` for it. Absent: every endpoint of its models' service types.
   */
  readonly serves?: readonly string[];
  /**
   * Public paths beyond chat and text completions that the engine serves itself
   * (`/v1/responses`, `/v1/messages`, `/v1/messages/count_tokens`, `/v1/embeddings`,
   * `/v1/rerank`). Responses and Messages calls to an engine that does not list them are
   * translated to chat completions (`adapters/kit/translate/`).
   */
  readonly nativeEndpoints?: readonly string[];
}
