/**
 * Bodies of llama-server's read-only endpoints (`/v1/models`, `/props`, `/slots`), shaped like
 * the recorded build b1-80fb11a (llama-server-captures.md; long strings trimmed there too).
 */

export const BUILD_INFO = "b1-80fb11a";

/** What the bodies depend on. */
export interface LlamaFacts {
  id: string;
  nCtx: number;
  totalSlots: number;
  supportsTools: boolean;
  vision: boolean;
  audio: boolean;
  loading: boolean;
  modelPath: string;
}

/** A model of a router-mode server (started without `-m`). */
export interface RouterModel {
  id: string;
  status: "loaded" | "unloaded" | "loading" | "sleeping" | "downloading";
  failed?: boolean;
  /** Per-slot context this model reports through `/props?model=` once loaded. */
  nCtx?: number;
}

const META = { vocab_type: true, n_vocab: 151936, n_embd: 64, n_params: 19522112, size: 39192832 };

/** `/v1/models` and `/models` of a single-model server; `meta` is null while loading. */
export function modelsBody(f: LlamaFacts, created: number): Record<string, unknown> {
  return {
    models: [
      {
        name: f.id,
        model: f.id,
        modified_at: "",
        size: "",
        digest: "",
        type: "model",
        description: "",
        tags: [""],
        capabilities: f.vision ? ["completion", "multimodal"] : ["completion"],
        parameters: "",
        details: {
          parent_model: "",
          format: "gguf",
          family: "",
          families: [""],
          parameter_size: "",
          quantization_level: "",
        },
      },
    ],
    object: "list",
    data: [
      {
        id: f.id,
        aliases: [f.id],
        tags: [],
        object: "model",
        created,
        owned_by: "llamacpp",
        meta: f.loading ? null : { ...META, n_ctx: f.nCtx, n_ctx_train: 32768, ftype: "F16" },
      },
    ],
  };
}

/** `/v1/models` of a router-mode server: one entry per known model, each with `status`. */
export function routerModelsBody(
  models: readonly RouterModel[],
  created: number,
): Record<string, unknown> {
  return {
    data: models.map((m) => ({
      id: m.id,
      object: "model",
      owned_by: "llamacpp",
      created,
      in_cache: true,
      path: `/models/${m.id}.gguf`,
      status: m.failed
        ? { value: m.status, args: ["llama-server"], exit_code: 1, failed: true }
        : { value: m.status, args: ["llama-server"] },
    })),
    object: "list",
  };
}

/** `/props`. */
export function propsBody(f: LlamaFacts): Record<string, unknown> {
  const template = "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}…";
  return {
    default_generation_settings: {
      params: {
        seed: 4294967295,
        temperature: 0.800000011920929,
        top_k: 40,
        top_p: 0.949999988079071,
        max_tokens: -1,
        n_predict: -1,
        stream: false,
        chat_format: "Content-only",
        lora: [],
      },
      n_ctx: f.nCtx,
    },
    total_slots: f.totalSlots,
    model_alias: f.id,
    model_ftype: "F16",
    model_path: f.modelPath,
    modalities: { vision: f.vision, video: false, audio: f.audio },
    media_marker: "<__media_QBGSnTROln7xC56xh4gCRntq9kfVjE2Z__>",
    endpoint_slots: true,
    endpoint_props: false,
    endpoint_metrics: true,
    ui: true,
    ui_settings: {},
    chat_template: template,
    chat_template_caps: {
      supports_object_arguments: true,
      supports_parallel_tool_calls: f.supportsTools,
      supports_preserve_reasoning: false,
      supports_reasoning_effort: false,
      supports_string_content: true,
      supports_system_role: true,
      supports_tool_calls: f.supportsTools,
      supports_tools: f.supportsTools,
      supports_typed_content: false,
    },
    bos_token: "<|endoftext|>",
    eos_token: "<|im_end|>",
    build_info: BUILD_INFO,
    is_sleeping: false,
    cors_proxy_enabled: false,
  };
}

/** `/slots`: the first `busy` slots are processing. */
export function slotsBody(f: LlamaFacts, busy: number): Record<string, unknown>[] {
  return Array.from({ length: f.totalSlots }, (_, id) =>
    id < busy
      ? { id, n_ctx: f.nCtx, speculative: false, is_processing: true, id_task: 553 + id }
      : { id, n_ctx: f.nCtx, speculative: false, is_processing: false },
  );
}
