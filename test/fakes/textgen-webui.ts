/**
 * A fake text-generation-webui with `--api` (engines.md §9, extensions/openai): `/v1/models`
 * lists the models on disk (`owned_by: "user"`); `/v1/internal/model/info` names the loaded one
 * (`"None"` until one is loaded); `--api-key` guards every path.
 */
import type { ServerResponse } from "node:http";
import { EngineFake, card, json, type EngineFakeOptions, type Route } from "./engine-fake.ts";

/** The loaded model. */
export interface FakeTextgenOptions extends EngineFakeOptions {
  /** The loaded model; default `Qwen_Qwen3-8B-Q4_K_M.gguf`. */
  model?: string;
}

/** A fake text-generation-webui over real HTTP; `loading` means no model is loaded. */
export class FakeTextgen extends EngineFake {
  constructor(readonly options: FakeTextgenOptions = {}) {
    super(options);
  }

  get model(): string {
    return this.options.model ?? "Qwen_Qwen3-8B-Q4_K_M.gguf";
  }

  protected served(): string[] {
    return this.loading ? [] : [this.model];
  }

  protected override unauthorized(): unknown {
    return { detail: "Unauthorized" };
  }

  protected route({ key }: Route, res: ServerResponse): boolean {
    if (key === "GET /v1/models")
      json(res, 200, {
        object: "list",
        data: [this.model, "Llama-3.2-3B-Instruct-Q8_0.gguf"].map((id) => ({
          ...card(id, "user"),
          created: 0,
        })),
      });
    else if (key === "GET /v1/internal/model/info")
      json(res, 200, { model_name: this.loading ? "None" : this.model, lora_names: [] });
    else return false;
    return true;
  }
}
