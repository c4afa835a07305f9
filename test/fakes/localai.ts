/**
 * A fake LocalAI (engines.md §9, mudler/LocalAI core/http): public `/.well-known/localai.json`
 * (an `endpoints` map), `/readyz` (503 while starting), `/healthz` and `/version`; `/v1/models`
 * entries without `owned_by`, and `/v1/models/capabilities` with `capabilities`,
 * `input_modalities` and `context_size`. `legacy` drops the discovery document and the
 * capabilities listing, as builds before them.
 */
import type { ServerResponse } from "node:http";
import { EngineFake, card, json, text, type EngineFakeOptions, type Route } from "./engine-fake.ts";

/** One configured model. */
export interface LocalAiModel {
  id: string;
  capabilities: string[];
  inputs: string[];
  outputs: string[];
  contextSize?: number;
}

/** Its models: two that chat, a speech-to-text and a text-to-speech one. */
export const LOCALAI_MODELS: readonly LocalAiModel[] = [
  {
    id: "qwen3-8b",
    capabilities: ["chat", "completion", "tools"],
    inputs: ["text"],
    outputs: ["text"],
    contextSize: 8192,
  },
  {
    id: "gemma-3-4b-it",
    capabilities: ["chat", "vision"],
    inputs: ["text", "image"],
    outputs: ["text"],
  },
  { id: "whisper-1", capabilities: ["transcript"], inputs: ["audio"], outputs: ["text"] },
  { id: "tts-1", capabilities: ["tts"], inputs: ["text"], outputs: ["audio"] },
];

const PUBLIC = new Set(["/.well-known/localai.json", "/readyz", "/healthz", "/version"]);

/** A fake LocalAI over real HTTP. */
export class FakeLocalAi extends EngineFake {
  constructor(readonly options: EngineFakeOptions & { legacy?: boolean } = {}) {
    super(options);
  }

  protected served(): string[] {
    return LOCALAI_MODELS.map((m) => m.id);
  }

  protected override isPublic(path: string): boolean {
    return PUBLIC.has(path);
  }

  protected override unauthorized(): unknown {
    return {
      error: {
        code: 401,
        message: "An authentication key is required",
        type: "invalid_request_error",
      },
    };
  }

  protected route({ key }: Route, res: ServerResponse): boolean {
    const legacy = this.options.legacy === true;
    const version = legacy ? "v2.20.1" : "v3.5.0";
    if (key === "GET /.well-known/localai.json" && !legacy)
      json(res, 200, {
        version,
        endpoints: { chat_completions: "/v1/chat/completions", models: "/v1/models" },
        endpoint_groups: { openai_compatible: { models: "/v1/models" } },
      });
    else if (key === "GET /readyz") text(res, this.loading ? 503 : 200, this.loading ? "" : "OK");
    else if (key === "GET /healthz") text(res, 200, "OK");
    else if (key === "GET /version") json(res, 200, { version });
    else if (key === "GET /v1/models")
      json(res, 200, { object: "list", data: LOCALAI_MODELS.map((m) => card(m.id, undefined)) });
    else if (key === "GET /v1/models/capabilities" && !legacy)
      json(res, 200, {
        object: "list",
        data: LOCALAI_MODELS.map((m) => ({
          id: m.id,
          object: "model",
          capabilities: m.capabilities,
          input_modalities: m.inputs,
          output_modalities: m.outputs,
          ...(m.contextSize === undefined ? {} : { context_size: m.contextSize }),
        })),
      });
    else return false;
    return true;
  }
}
