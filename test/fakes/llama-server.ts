/**
 * A fake `llama-server` over real HTTP, answering in the recorded shapes of build b1-80fb11a
 * (llama-server-captures.md): `Server: llama.cpp` on every response, errors with
 * `Connection: close`, `--api-key` guarding everything but `/health`, 503 while loading.
 * @example
 * const fake = new FakeLlamaServer({ tokens: ["a", "b"] });
 * const url = await fake.start();
 * // … fake.requests, fake.closedEarly, fake.once("client-closed", …)
 * await fake.stop();
 */
import type { ServerResponse } from "node:http";
import {
  FakeServer,
  json as sendJson,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";
import { embeddingsBody, rerankBody } from "./pooling.ts";
import { generate, plan, WORD_SALAD, type GenerationStyle, type PlanError } from "./generation.ts";
import {
  BUILD_INFO,
  modelsBody,
  propsBody,
  routerModelsBody,
  slotsBody,
  type LlamaFacts,
  type RouterModel,
} from "./llama-props.ts";

export type { RouterModel };

export interface FakeLlamaOptions extends FakeBaseOptions {
  /** `--alias`: replaces the model path as the id. */
  alias?: string;
  /** `--api-key`: required on every path but `/health` and `/v1/health`. */
  apiKey?: string;
  /** Per-slot context. Default 256 (the captures' `-c 512 -np 2`). */
  nCtx?: number;
  totalSlots?: number;
  /** Reply pieces, in order; default the captured word salad. */
  tokens?: string[];
  pingEveryMs?: number;
  supportsTools?: boolean;
  vision?: boolean;
  audio?: boolean;
  /** `-m`; default `/models/tiny-qwen2-chat.gguf`. */
  modelPath?: string;
  /** Router mode (no `-m`): these models are listed instead. */
  router?: RouterModel[];
  /** `--embeddings --pooling mean`: `/v1/embeddings` answers (501 otherwise). */
  embeddings?: boolean;
  /** `--reranking`: `/v1/rerank` answers (501 otherwise); implies embeddings. */
  reranking?: boolean;
}

const PUBLIC = new Set(["/health", "/v1/health"]);

export class FakeLlamaServer extends FakeServer {
  readonly options: FakeLlamaOptions;

  constructor(options: FakeLlamaOptions = {}) {
    super(options);
    this.options = options;
  }

  private facts(nCtx = this.options.nCtx ?? 256): LlamaFacts {
    const modelPath = this.options.modelPath ?? "/models/tiny-qwen2-chat.gguf";
    return {
      id: this.options.alias ?? modelPath,
      nCtx,
      totalSlots: this.options.totalSlots ?? 2,
      supportsTools: this.options.supportsTools ?? true,
      vision: this.options.vision ?? false,
      audio: this.options.audio ?? false,
      loading: this.loading,
      modelPath,
    };
  }

  private style(): GenerationStyle {
    const f = this.facts();
    return {
      model: f.id,
      tokens: this.options.tokens ?? WORD_SALAD,
      nCtx: f.nCtx,
      fingerprint: BUILD_INFO,
      timings: true,
      pingEveryMs: this.options.pingEveryMs,
    };
  }

  private authorised(req: RecordedRequest): boolean {
    const key = this.options.apiKey;
    if (key === undefined || PUBLIC.has(req.path.split("?")[0] ?? "")) return true;
    return req.headers.authorization === `Bearer ${key}` || req.headers["x-api-key"] === key;
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    res.setHeader("Server", "llama.cpp");
    const origin = req.headers.origin;
    res.setHeader("Access-Control-Allow-Origin", typeof origin === "string" ? origin : "");
    const url = new URL(req.path, "http://fake");
    const route = `${req.method} ${url.pathname}`;
    const created = Math.floor(Date.now() / 1000);
    if (!this.authorised(req)) return error(res, 401, "authentication_error", "Invalid API Key");
    if (this.loading && !/^GET \/(v1\/)?models$/.test(route))
      return error(res, 503, "unavailable_error", "Loading model");
    const router = this.options.router;
    switch (route) {
      case "GET /health":
      case "GET /v1/health":
        return json(res, 200, { status: "ok" });
      case "GET /models":
      case "GET /v1/models":
        return json(
          res,
          200,
          router ? routerModelsBody(router, created) : modelsBody(this.facts(), created),
        );
      case "GET /props": {
        if (!router) return json(res, 200, propsBody(this.facts()));
        const model = router.find((m) => m.id === url.searchParams.get("model"));
        if (!model || model.status !== "loaded")
          return error(
            res,
            400,
            "invalid_request_error",
            model ? "model is not loaded" : "model name is missing from the request",
          );
        return json(res, 200, {
          ...propsBody(this.facts(model.nCtx)),
          model_alias: model.id,
          model_path: `/models/${model.id}.gguf`,
        });
      }
      case "GET /slots": {
        const f = this.facts();
        if (url.searchParams.get("fail_on_no_slot") === "1" && this.inFlight >= f.totalSlots)
          return error(res, 503, "unavailable_error", "no slot available");
        return json(res, 200, slotsBody(f, this.inFlight));
      }
      case "POST /v1/chat/completions":
      case "POST /chat/completions":
        return this.complete(body, res, "chat");
      case "POST /v1/completions":
      case "POST /completions":
        return this.complete(body, res, "text");
      case "POST /v1/embeddings":
        return this.pool(body, res, "embeddings");
      case "POST /v1/rerank":
        return this.pool(body, res, "rerank");
      default:
        return error(res, 404, "not_found_error", "File Not Found");
    }
  }

  /** `/v1/embeddings` and `/v1/rerank`: 501 without their flags, as recorded. */
  private pool(body: Body, res: ServerResponse, kind: "embeddings" | "rerank"): void {
    const reranking = this.options.reranking === true;
    const on = kind === "rerank" ? reranking : reranking || this.options.embeddings === true;
    if (!on)
      return kind === "rerank"
        ? error(
            res,
            501,
            "not_supported_error",
            "This server does not support reranking. Start it with `--reranking`",
          )
        : error(
            res,
            501,
            "not_supported_error",
            "This server does not support embeddings. Start it with `--embeddings`",
          );
    const request = (body.kind === "json" ? body.value : {}) as Record<string, unknown>;
    const id = this.facts().id;
    const answer =
      kind === "rerank" ? rerankBody(request, id) : embeddingsBody(request, id, 64, false);
    if (typeof answer === "string") return error(res, 400, "invalid_request_error", answer);
    json(res, 200, answer);
  }

  private async complete(body: Body, res: ServerResponse, kind: "chat" | "text"): Promise<void> {
    if (body.kind !== "json") {
      const why = body.kind === "bad" ? body.error : "attempting to parse an empty input";
      return error(
        res,
        500,
        "server_error",
        `[json.exception.parse_error.101] parse error: ${why}`,
      );
    }
    const style = this.style();
    const p = plan((body.value ?? {}) as Record<string, unknown>, style, kind);
    if ("status" in p) return planError(res, p);
    await generate(this, style, p, kind, res);
  }
}

/** llama-server's JSON: `charset=utf-8`, and `Connection: close` on errors, as recorded. */
function json(res: ServerResponse, status: number, body: unknown, close = false): void {
  sendJson(
    res,
    status,
    body,
    close ? { Connection: "close" } : {},
    "application/json; charset=utf-8",
  );
}

/** llama-server's error envelope; 401 and 404 list their fields in another order, as recorded. */
function error(
  res: ServerResponse,
  code: number,
  type: string,
  message: string,
  extra: Record<string, unknown> = {},
): void {
  const body =
    code === 401 || code === 404 ? { message, type, code } : { code, message, type, ...extra };
  json(res, code, { error: body }, true);
}

function planError(res: ServerResponse, p: PlanError): void {
  error(res, p.status, p.type, p.message, p.extra);
}
