/**
 * A fake `vllm serve` (engines.md §2): `/v1/models` cards with `owned_by: "vllm"`, `root`,
 * `parent`, `max_model_len` and `permission`, LoRA cards without `max_model_len`; `/version`;
 * an empty 200 `/health` (503 once the engine died). Only `/v1` paths want the key, refused with
 * `{"error":"Unauthorized"}`. While loading it accepts connections and answers nothing.
 */
import type { RecordedRequest, Body } from "./fake-server.ts";
import type { ServerResponse } from "node:http";
import { embeddingsBody, rerankBody } from "./pooling.ts";
import {
  EngineFake,
  card,
  hang,
  json,
  text,
  type EngineFakeOptions,
  type Route,
} from "./engine-fake.ts";

/** How the fake vLLM was launched. */
export interface FakeVllmOptions extends EngineFakeOptions {
  /** `--served-model-name`; default `Qwen/Qwen2.5-7B-Instruct`. */
  model?: string;
  /** `--max-model-len`; default 8192. */
  maxModelLen?: number;
  /** LoRA adapters (`--lora-modules name=path`) on the base model. */
  loras?: string[];
  /** The engine died: `/health` answers 503. */
  dead?: boolean;
  /** The model's task, which decides the routes vLLM mounts; default `generate`. */
  task?: "generate" | "embed" | "score";
  /** `--disable-fastapi-docs`: no `/openapi.json`. */
  noDocs?: boolean;
}

/** The routes vLLM mounts for each task (its `api_server` routers), as `/openapi.json` lists. */
const TASK_ROUTES: Record<string, string[]> = {
  generate: ["/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/messages"],
  embed: ["/v1/embeddings", "/v1/rerank", "/v1/score", "/pooling"],
  score: ["/v1/rerank", "/v1/score", "/rerank", "/pooling"],
};
const COMMON_ROUTES = ["/health", "/version", "/v1/models", "/tokenize", "/load"];

/** What `/version` answers. */
export const VLLM_VERSION = "0.11.0";

/** A fake `vllm serve` over real HTTP. */
export class FakeVllm extends EngineFake {
  constructor(readonly options: FakeVllmOptions = {}) {
    super(options);
  }

  get model(): string {
    return this.options.model ?? "Qwen/Qwen2.5-7B-Instruct";
  }

  protected served(): string[] {
    return [this.model, ...(this.options.loras ?? [])];
  }

  protected override contextOf(): number {
    return this.options.maxModelLen ?? 8192;
  }

  protected override isPublic(path: string): boolean {
    return !path.startsWith("/v1");
  }

  protected override async handle(
    req: RecordedRequest,
    body: Body,
    res: ServerResponse,
  ): Promise<void> {
    if (this.loading) return hang(res);
    return super.handle(req, body, res);
  }

  private get task(): string {
    return this.options.task ?? "generate";
  }

  protected route({ key, body }: Route, res: ServerResponse): boolean {
    const routes = [...COMMON_ROUTES, ...(TASK_ROUTES[this.task] ?? [])];
    const path = key.slice(key.indexOf(" ") + 1);
    const request = (body.kind === "json" ? body.value : {}) as Record<string, unknown>;
    if (key.startsWith("POST ") && !routes.includes(path)) {
      // A route the task does not mount: FastAPI's own 404.
      json(res, 404, { detail: "Not Found" });
      return true;
    }
    if (key === "GET /openapi.json" && !this.options.noDocs)
      json(res, 200, {
        openapi: "3.1.0",
        info: { title: "FastAPI", version: "0.1.0" },
        paths: Object.fromEntries(routes.map((r) => [r, {}])),
      });
    else if (key === "POST /v1/embeddings" || key === "POST /v1/rerank") {
      const answer =
        key === "POST /v1/rerank"
          ? rerankBody(request, this.model)
          : embeddingsBody(request, this.model, 32);
      if (typeof answer === "string")
        json(res, 400, this.errorBody(400, "BadRequestError", answer));
      else json(res, 200, answer);
    } else if (key === "POST /v1/responses") json(res, 200, nativeResponse(this.model, request));
    else if (key === "GET /version") json(res, 200, { version: VLLM_VERSION });
    else if (key === "GET /health") text(res, this.options.dead ? 503 : 200, "");
    else if (key === "GET /v1/models") json(res, 200, { object: "list", data: this.cards() });
    else return false;
    return true;
  }

  private cards(): unknown[] {
    const permission = [{ id: "modelperm-0", object: "model_permission", allow_sampling: true }];
    const base = card(this.model, "vllm", {
      root: this.model,
      parent: null,
      max_model_len: this.contextOf(),
      permission,
    });
    const loras = (this.options.loras ?? []).map((id) =>
      card(id, "vllm", { root: `/loras/${id}`, parent: this.model, permission }),
    );
    return [base, ...loras];
  }
}

/**
 * vLLM's own `/v1/responses` answer (non-streamed), marked so tests can tell it from the
 * club's translation: its message item id is `msg_vllm`.
 */
function nativeResponse(model: string, request: Record<string, unknown>): Record<string, unknown> {
  return {
    id: "resp_vllm",
    object: "response",
    created_at: 1_700_000_000,
    model,
    status: "completed",
    output: [
      {
        type: "message",
        id: "msg_vllm",
        status: "completed",
        role: "assistant",
        content: [
          { type: "output_text", text: `native: ${String(request.input)}`, annotations: [] },
        ],
      },
    ],
    usage: { input_tokens: 3, output_tokens: 2, total_tokens: 5 },
  };
}
