/**
 * A fake SGLang server (engines.md §3): `/v1/models` with `owned_by: "sglang"`, `root` and
 * `max_model_len`, answering even while starting; `/health` 503 until ready; `/get_model_info`
 * with `model_path`, `is_generation` and the image and audio flags. Every path but `/health`
 * wants the key (as vLLM's middleware does; SGLang's was not verified).
 */
import type { ServerResponse } from "node:http";
import { EngineFake, card, json, text, type EngineFakeOptions, type Route } from "./engine-fake.ts";

/** How the fake SGLang was launched. */
export interface FakeSglangOptions extends EngineFakeOptions {
  /** `--model-path`; default `meta-llama/Llama-3.1-8B-Instruct`. */
  model?: string;
  contextLength?: number;
  vision?: boolean;
  audio?: boolean;
  /** `--is-embedding` makes it false. */
  isGeneration?: boolean;
}

/** A fake SGLang server over real HTTP. */
export class FakeSglang extends EngineFake {
  constructor(readonly options: FakeSglangOptions = {}) {
    super(options);
  }

  get model(): string {
    return this.options.model ?? "meta-llama/Llama-3.1-8B-Instruct";
  }

  protected served(): string[] {
    return [this.model];
  }

  protected override contextOf(): number {
    return this.options.contextLength ?? 131072;
  }

  protected override isPublic(path: string): boolean {
    return path === "/health";
  }

  protected route({ key }: Route, res: ServerResponse): boolean {
    if (key === "GET /health") text(res, this.loading ? 503 : 200, "");
    else if (key === "GET /v1/models")
      json(res, 200, {
        object: "list",
        data: [card(this.model, "sglang", { root: this.model, max_model_len: this.contextOf() })],
      });
    else if (key === "GET /get_model_info")
      json(res, 200, {
        model_path: this.model,
        tokenizer_path: this.model,
        is_generation: this.options.isGeneration ?? true,
        preferred_sampling_params: null,
        weight_version: "default",
        has_image_understanding: this.options.vision ?? false,
        has_audio_understanding: this.options.audio ?? false,
      });
    else if (this.loading) json(res, 503, this.errorBody(503, "ServiceUnavailable", "starting"));
    else return false;
    return true;
  }
}
