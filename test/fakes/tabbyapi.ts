/**
 * A fake TabbyAPI (engines.md §9, tabbyAPI endpoints/core/router.py): public
 * `/.well-known/serviceinfo` (`software.name: "TabbyAPI"`) and `/health`; `/v1/models`
 * (`owned_by: "tabbyAPI"`), `/v1/model` (the loaded model's card with `parameters`; 503 without
 * one), the llama.cpp-like `/props`, and KoboldCpp's `/api/extra/version`, which TabbyAPI
 * answers as KoboldCpp. Keys come as `x-api-key` or Bearer.
 */
import type { ServerResponse } from "node:http";
import type { RecordedRequest } from "./fake-server.ts";
import { EngineFake, card, json, type EngineFakeOptions, type Route } from "./engine-fake.ts";

/** The loaded model's parameters. */
export interface FakeTabbyOptions extends EngineFakeOptions {
  /** Default `Qwen2.5-14B-Instruct-exl2`. */
  model?: string;
  maxSeqLen?: number;
  maxBatchSize?: number;
  vision?: boolean;
}

const PUBLIC = new Set(["/.well-known/serviceinfo", "/health", "/api/extra/version"]);

/** A fake TabbyAPI over real HTTP; `loading` means no model is loaded. */
export class FakeTabbyApi extends EngineFake {
  constructor(readonly options: FakeTabbyOptions = {}) {
    super(options);
  }

  get model(): string {
    return this.options.model ?? "Qwen2.5-14B-Instruct-exl2";
  }

  protected served(): string[] {
    return this.loading ? [] : [this.model];
  }

  protected override contextOf(): number {
    return this.options.maxSeqLen ?? 16384;
  }

  protected override isPublic(path: string): boolean {
    return PUBLIC.has(path);
  }

  protected override authorised(req: RecordedRequest, path: string): boolean {
    return super.authorised(req, path) || req.headers["x-api-key"] === this.options.apiKey;
  }

  protected override unauthorized(): unknown {
    return { detail: "Invalid API key" };
  }

  protected route({ key }: Route, res: ServerResponse): boolean {
    const noModel = (): void => json(res, 503, { detail: "No models are currently loaded." });
    const params = {
      max_seq_len: this.contextOf(),
      max_batch_size: this.options.maxBatchSize ?? 8,
      cache_mode: "Q8",
      prompt_template: "chatml",
      use_vision: this.options.vision ?? false,
    };
    if (key === "GET /.well-known/serviceinfo")
      json(res, 200, {
        version: 0.1,
        software: { name: "TabbyAPI", repository: "https://github.com/theroyallab/tabbyAPI" },
        api: { openai: { name: "OpenAI API", relative_url: "/v1", version: 1 } },
      });
    else if (key === "GET /health") json(res, 200, { status: "healthy", issues: [] });
    else if (key === "GET /api/extra/version")
      json(res, 200, { result: "KoboldCpp", version: "1.61" });
    else if (key === "GET /v1/models")
      json(res, 200, { object: "list", data: this.served().map((id) => card(id, "tabbyAPI")) });
    else if (key === "GET /v1/model")
      if (this.loading) noModel();
      else json(res, 200, card(this.model, "tabbyAPI", { parameters: params }));
    else if (key === "GET /props")
      if (this.loading) noModel();
      else
        json(res, 200, {
          total_slots: params.max_batch_size,
          default_generation_settings: { n_ctx: params.max_seq_len },
          chat_template: "{% for message in messages %}…",
        });
    else if (this.loading && key.startsWith("POST /v1/")) noModel();
    else return false;
    return true;
  }
}
