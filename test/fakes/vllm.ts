/**
 * A fake `vllm serve` (engines.md §2): `/v1/models` cards with `owned_by: "vllm"`, `root`,
 * `parent`, `max_model_len` and `permission`, LoRA cards without `max_model_len`; `/version`;
 * an empty 200 `/health` (503 once the engine died). Only `/v1` paths want the key, refused with
 * `{"error":"Unauthorized"}`. While loading it accepts connections and answers nothing.
 */
import type { RecordedRequest, Body } from "./fake-server.ts";
import type { ServerResponse } from "node:http";
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
}

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

  protected route({ key }: Route, res: ServerResponse): boolean {
    if (key === "GET /version") json(res, 200, { version: VLLM_VERSION });
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
