/**
 * A fake `ollama serve` (engines.md §4): `GET /` says `Ollama is running`; `/api/version`,
 * `/api/tags`, `/api/ps` (loaded models with `context_length`), `POST /api/show` with
 * `capabilities` and `model_info["<arch>.context_length"]`; the OpenAI surface `/v1/models`
 * (`owned_by: "library"`) and `/v1/chat/completions`, `/v1/completions`. Ollama has no key of its
 * own: `apiKey` stands for an authenticating reverse proxy in front of it.
 */
import type { ServerResponse } from "node:http";
import { EngineFake, card, json, text, type EngineFakeOptions, type Route } from "./engine-fake.ts";
import { embeddingsBody } from "./pooling.ts";

/** One pulled model. */
export interface OllamaModel {
  name: string;
  capabilities: string[];
  /** `model_info["<arch>.context_length"]`, the trained window. */
  contextLength: number;
  arch?: string;
  /** Set when the model is loaded (`/api/ps`), with the context it was loaded with. */
  loadedContext?: number;
}

/** The default pulls: a tool model (loaded), a vision model, an embedding model. */
export const OLLAMA_MODELS: readonly OllamaModel[] = [
  {
    name: "qwen3:8b",
    capabilities: ["completion", "tools", "thinking"],
    contextLength: 40960,
    arch: "qwen3",
    loadedContext: 8192,
  },
  {
    name: "gemma3:4b",
    capabilities: ["completion", "vision"],
    contextLength: 131072,
    arch: "gemma3",
  },
  {
    name: "nomic-embed-text:latest",
    capabilities: ["embedding"],
    contextLength: 2048,
    arch: "nomic-bert",
  },
];

/** A fake `ollama serve` over real HTTP; `addModel`/`removeModel` change what it lists. */
export class FakeOllama extends EngineFake {
  readonly models: OllamaModel[];

  constructor(options: EngineFakeOptions & { models?: OllamaModel[] } = {}) {
    super(options);
    this.models = [...(options.models ?? OLLAMA_MODELS)];
  }

  /** `ollama pull`: the model appears in the next listing. */
  addModel(model: OllamaModel): void {
    this.models.push(model);
  }

  /** `ollama rm`: the model is gone from the next listing. */
  removeModel(name: string): void {
    const i = this.models.findIndex((m) => m.name === name);
    if (i >= 0) this.models.splice(i, 1);
  }

  protected served(): string[] {
    return this.models.map((m) => m.name);
  }

  protected override contextOf(name: string): number {
    const m = this.models.find((x) => x.name === name);
    return m?.loadedContext ?? 4096;
  }

  protected override unauthorized(): unknown {
    return { error: "unauthorized" };
  }

  protected route({ key, body }: Route, res: ServerResponse): boolean {
    const entry = (m: OllamaModel): Record<string, unknown> => ({
      name: m.name,
      model: m.name,
      modified_at: "2025-10-01T12:00:00Z",
      size: 5_200_000_000,
      digest: "500a1f067a9f",
      details: {
        format: "gguf",
        family: m.arch ?? "llama",
        parameter_size: "8B",
        quantization_level: "Q4_K_M",
      },
    });
    switch (key) {
      case "GET /":
      case "HEAD /":
        text(res, 200, "Ollama is running");
        return true;
      case "GET /api/version":
        json(res, 200, { version: "0.12.3" });
        return true;
      case "GET /api/tags":
        json(res, 200, { models: this.models.map(entry) });
        return true;
      case "GET /api/ps": {
        const loaded = this.models.filter((m) => m.loadedContext !== undefined);
        const ps = loaded.map((m) => ({
          ...entry(m),
          size_vram: 6_000_000_000,
          context_length: m.loadedContext,
        }));
        json(res, 200, { models: ps });
        return true;
      }
      case "POST /api/show":
        return this.show(
          body.kind === "json" ? (body.value as { model?: unknown }).model : undefined,
          res,
        );
      case "GET /v1/models":
        json(res, 200, { object: "list", data: this.models.map((m) => card(m.name, "library")) });
        return true;
      case "POST /v1/embeddings":
        return this.embed(body.kind === "json" ? (body.value as Record<string, unknown>) : {}, res);
      default:
        return false;
    }
  }

  /** Ollama's `/v1/embeddings`: only for a model with the `embedding` capability. */
  private embed(request: Record<string, unknown>, res: ServerResponse): boolean {
    const m = this.models.find((x) => x.name === request.model);
    if (!m?.capabilities.includes("embedding")) {
      const why = m
        ? `"${m.name}" does not support embeddings`
        : `model "${String(request.model)}" not found`;
      json(res, m ? 400 : 404, {
        error: { message: why, type: "api_error", param: null, code: null },
      });
      return true;
    }
    const answer = embeddingsBody(request, m.name, 48);
    if (typeof answer === "string")
      json(res, 400, {
        error: { message: answer, type: "invalid_request_error", param: null, code: null },
      });
    else json(res, 200, answer);
    return true;
  }

  private show(name: unknown, res: ServerResponse): boolean {
    const m = this.models.find((x) => x.name === name);
    if (!m) {
      json(res, 404, { error: `model '${String(name)}' not found` });
      return true;
    }
    const arch = m.arch ?? "llama";
    json(res, 200, {
      modelfile: `FROM ${m.name}`,
      parameters: "",
      template: "{{ .Prompt }}",
      details: { format: "gguf", family: arch, parameter_size: "8B", quantization_level: "Q4_K_M" },
      model_info: { "general.architecture": arch, [`${arch}.context_length`]: m.contextLength },
      capabilities: m.capabilities,
    });
    return true;
  }
}
