/**
 * A generic OpenAI-compatible fake (vLLM-like by default): `/v1/models` with a configurable
 * `owned_by` and context field, chat and text completions from the shared generator, 503
 * while loading, `{"error":"Unauthorized"}` on `/v1/*` without the key (vLLM's words).
 * Not a recording of any one server; the generation bodies are llama-server's shapes.
 */
import type { ServerResponse } from "node:http";
import {
  FakeServer,
  json,
  send,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";
import { generate, plan, WORD_SALAD, type GenerationStyle } from "./generation.ts";

export interface FakeOpenAIOptions extends FakeBaseOptions {
  /** Default `Qwen/Qwen2.5-0.5B-Instruct`. */
  modelId?: string;
  /** Default `vllm`. */
  ownedBy?: string;
  /** Context reported as `max_model_len` (or `context_length`); omitted when undefined. */
  contextLength?: number;
  contextField?: "max_model_len" | "context_length";
  apiKey?: string;
  tokens?: string[];
}

export class FakeOpenAIServer extends FakeServer {
  readonly options: FakeOpenAIOptions;

  constructor(options: FakeOpenAIOptions = {}) {
    super(options);
    this.options = options;
  }

  get modelId(): string {
    return this.options.modelId ?? "Qwen/Qwen2.5-0.5B-Instruct";
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    const path = req.path.split("?")[0] ?? "";
    const key = this.options.apiKey;
    if (
      key !== undefined &&
      path.startsWith("/v1/") &&
      req.headers.authorization !== `Bearer ${key}`
    )
      return json(res, 401, { error: "Unauthorized" });
    if (this.loading)
      return json(res, 503, errorBody(503, "ServiceUnavailableError", "the engine is starting"));
    const route = `${req.method} ${path}`;
    if (route === "GET /health") return send(res, 200, "", "application/json");
    if (route === "GET /v1/models") return json(res, 200, this.models());
    const kind =
      route === "POST /v1/chat/completions"
        ? "chat"
        : route === "POST /v1/completions"
          ? "text"
          : undefined;
    if (!kind) return json(res, 404, { detail: "Not Found" });
    if (body.kind !== "json")
      return json(res, 400, errorBody(400, "BadRequestError", "invalid JSON body"));
    const style: GenerationStyle = {
      model: this.modelId,
      tokens: this.options.tokens ?? WORD_SALAD,
      nCtx: this.options.contextLength ?? 4096,
      timings: false,
    };
    const p = plan((body.value ?? {}) as Record<string, unknown>, style, kind);
    if ("status" in p)
      return json(res, p.status, errorBody(p.status, "BadRequestError", p.message));
    await generate(this, style, p, kind, res);
  }

  private models(): Record<string, unknown> {
    const context = this.options.contextLength;
    const field = this.options.contextField ?? "max_model_len";
    const entry = {
      id: this.modelId,
      object: "model",
      created: Math.floor(Date.now() / 1000),
      owned_by: this.options.ownedBy ?? "vllm",
      root: this.modelId,
      parent: null,
      ...(context === undefined ? {} : { [field]: context }),
    };
    return { object: "list", data: [entry] };
  }
}

function errorBody(code: number, type: string, message: string): Record<string, unknown> {
  return { error: { message, type, param: null, code } };
}
