/**
 * A fake LM Studio server (engines.md §5): `/v1/models` entries `{id, object, owned_by:
 * "organization_owner"}`; the native `/api/v1/models` (≥ 0.4.0: `key`, `type`,
 * `capabilities`, `loaded_instances[].config`) and `/api/v0/models` (`type: llm|vlm|embeddings`,
 * `state`, `max_context_length`), each only when `api` is that new; `Unexpected endpoint` 404
 * otherwise. The optional API token guards every path.
 */
import type { ServerResponse } from "node:http";
import { EngineFake, card, json, type EngineFakeOptions, type Route } from "./engine-fake.ts";

/** One downloaded model. */
export interface LmsModel {
  key: string;
  type: "llm" | "embedding";
  vision?: boolean;
  tools?: boolean;
  maxContext: number;
  /** Loaded with this context and these parallel slots. */
  loaded?: { contextLength: number; parallel: number };
}

/** The default downloads: a loaded vision and tool model, a tool model, an embedding model. */
export const LMS_MODELS: readonly LmsModel[] = [
  {
    key: "google/gemma-3-12b",
    type: "llm",
    vision: true,
    tools: true,
    maxContext: 131072,
    loaded: { contextLength: 8192, parallel: 4 },
  },
  { key: "qwen/qwen3-4b", type: "llm", tools: true, maxContext: 32768 },
  { key: "text-embedding-nomic-embed-text-v1.5", type: "embedding", maxContext: 2048 },
];

/** Which LM Studio the fake is. */
export interface FakeLmStudioOptions extends EngineFakeOptions {
  /** Newest native API it has: `v1` (0.4.x), `v0` (0.3.6+) or none (older). Default `v1`. */
  api?: "v1" | "v0" | "none";
  models?: LmsModel[];
}

/** A fake LM Studio server over real HTTP. */
export class FakeLmStudio extends EngineFake {
  constructor(readonly options: FakeLmStudioOptions = {}) {
    super(options);
  }

  get models(): readonly LmsModel[] {
    return this.options.models ?? LMS_MODELS;
  }

  protected served(): string[] {
    return this.models.map((m) => m.key);
  }

  protected override unauthorized(): unknown {
    return { error: { message: "Invalid or missing API token", type: "invalid_request_error" } };
  }

  protected route({ key }: Route, res: ServerResponse): boolean {
    const api = this.options.api ?? "v1";
    if (key === "GET /v1/models")
      json(res, 200, {
        object: "list",
        data: this.models.map((m) => card(m.key, "organization_owner")),
      });
    else if (key === "GET /api/v1/models" && api === "v1")
      json(res, 200, { models: this.models.map(v1) });
    else if (key === "GET /api/v0/models" && api !== "none")
      json(res, 200, { object: "list", data: this.models.map(v0) });
    else if (key.startsWith("GET /api/"))
      json(res, 404, { error: `Unexpected endpoint or method. (${key})` });
    else return false;
    return true;
  }
}

function v1(m: LmsModel): Record<string, unknown> {
  return {
    type: m.type,
    key: m.key,
    display_name: m.key,
    architecture: "gemma3",
    quantization: { name: "Q4_K_M", bits_per_weight: 4 },
    size_bytes: 8_000_000_000,
    params_string: "12B",
    loaded_instances: m.loaded
      ? [
          {
            id: m.key,
            config: {
              context_length: m.loaded.contextLength,
              parallel: m.loaded.parallel,
              eval_batch_size: 512,
            },
          },
        ]
      : [],
    max_context_length: m.maxContext,
    format: "gguf",
    capabilities:
      m.type === "llm" ? { vision: m.vision ?? false, trained_for_tool_use: m.tools ?? false } : {},
  };
}

function v0(m: LmsModel): Record<string, unknown> {
  return {
    id: m.key,
    object: "model",
    type: m.type === "embedding" ? "embeddings" : m.vision ? "vlm" : "llm",
    publisher: m.key.split("/")[0],
    arch: "gemma3",
    compatibility_type: "gguf",
    quantization: "Q4_K_M",
    state: m.loaded ? "loaded" : "not-loaded",
    max_context_length: m.maxContext,
  };
}
