/**
 * A fake KoboldCpp (engines.md §9, koboldcpp.py): public `/v1/models` (`owned_by:
 * "koboldcpp"`, ids `koboldcpp/<name>`), `/api/extra/version` (`result: "KoboldCpp"`,
 * `protected`, `vision`), `/api/v1/model` (the name, or `koboldcpp/protected-model` without the
 * password), `/api/extra/true_max_context_length`, and the Ollama-style `/api/tags` it also
 * emulates. `--password` (`apiKey`) guards generation only.
 */
import type { ServerResponse } from "node:http";
import { EngineFake, card, json, text, type EngineFakeOptions, type Route } from "./engine-fake.ts";

/** How the fake KoboldCpp was launched. */
export interface FakeKoboldOptions extends EngineFakeOptions {
  /** Default `Mistral-Nemo-Instruct-2407-Q4_K_M`. */
  model?: string;
  /** `--contextsize`; default 8192. */
  contextSize?: number;
  /** An `--mmproj` is loaded. */
  vision?: boolean;
}

/** A fake KoboldCpp over real HTTP. */
export class FakeKoboldCpp extends EngineFake {
  constructor(readonly options: FakeKoboldOptions = {}) {
    super(options);
  }

  get modelId(): string {
    return `koboldcpp/${this.options.model ?? "Mistral-Nemo-Instruct-2407-Q4_K_M"}`;
  }

  protected served(): string[] {
    return [this.modelId];
  }

  protected override contextOf(): number {
    return this.options.contextSize ?? 8192;
  }

  protected override isPublic(path: string): boolean {
    return !path.endsWith("/completions");
  }

  protected override unauthorized(): unknown {
    return {
      detail: {
        error: "Unauthorized",
        msg: "Authentication key is missing or invalid.",
        type: "unauthorized",
      },
    };
  }

  protected route({ key, req }: Route, res: ServerResponse): boolean {
    const key_ = this.options.apiKey;
    const authorised = key_ === undefined || req.headers.authorization === `Bearer ${key_}`;
    if (key === "GET /") text(res, 200, "<!DOCTYPE html><title>KoboldAI Lite</title>", "text/html");
    else if (key === "GET /v1/models" || key === "GET /models")
      json(res, 200, {
        object: "list",
        data: [card(this.modelId, "koboldcpp", { permission: [], root: "koboldcpp" })],
      });
    else if (key === "GET /api/extra/version")
      json(res, 200, {
        result: "KoboldCpp",
        version: "1.98.1",
        protected: key_ !== undefined,
        txt2img: false,
        vision: this.options.vision ?? false,
        transcribe: false,
      });
    else if (key === "GET /api/v1/model")
      json(res, 200, { result: authorised ? this.modelId : "koboldcpp/protected-model" });
    else if (key === "GET /api/extra/true_max_context_length")
      json(res, 200, { value: this.contextOf() });
    else if (key === "GET /api/tags")
      json(res, 200, {
        models: [
          {
            name: this.modelId,
            model: this.modelId,
            details: { format: "gguf", family: "koboldcpp" },
          },
        ],
      });
    else return false;
    return true;
  }
}
