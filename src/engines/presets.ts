/**
 * Presets make the common engines one line of config. `llama-server` takes a GGUF file or a
 * directory of them (one engine per file, its context length and chat template read from the
 * GGUF header); `vllm`, `whisper-server`, `kokoro` (Kokoro-FastAPI) and `comfyui` fill in the
 * command, the adapter and the service type.
 */
import { readdir, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { UserError, describeError } from "../errors.ts";
import type { Feature, ServiceType } from "../protocol/manifest.ts";
import { readGgufHeader } from "./gguf.ts";
import {
  ENGINE_DEFAULTS,
  type EngineModel,
  type EngineSpec,
  type StoredEngine,
  type StoredEngineModel,
} from "./schema.ts";

const HOST = ["--host", "127.0.0.1", "--port", "{port}"];

/** Every file of a split GGUF but its first, and vision projectors: not models of their own. */
const NOT_A_MODEL = /(-0000[2-9]|-000[1-9]\d|-00[1-9]\d\d)-of-\d{5}\.gguf$|^mmproj/i;

function model(
  m: StoredEngineModel | undefined,
  id: string,
  type: ServiceType,
  features: Feature[],
  contextLength: number | null = null,
): EngineModel {
  return {
    id: m?.id ?? id,
    servedId: m?.servedId ?? m?.id ?? id,
    type: m?.type ?? type,
    contextLength: m?.contextLength ?? contextLength,
    features: m?.features ?? features,
  };
}

function declared(e: StoredEngine, type: ServiceType, features: Feature[]): EngineModel[] {
  return (e.models ?? []).map((m) => model(m, m.id, type, features));
}

function spec(
  e: StoredEngine,
  command: string[],
  adapter: string,
  models: EngineModel[],
): EngineSpec {
  const gpus = e.gpus ?? [];
  return {
    name: e.name,
    command,
    adapter,
    models,
    gpus,
    vramMiB: e.vramMiB,
    health: e.health,
    idleMs: (e.idleSeconds ?? ENGINE_DEFAULTS.idleSeconds) * 1000,
    startMs: (e.startSeconds ?? ENGINE_DEFAULTS.startSeconds) * 1000,
    port: e.port,
    // Only the engine's own GPUs are visible to it; the owner's env wins.
    env: { ...(gpus.length && e.preset ? { CUDA_VISIBLE_DEVICES: "{gpu}" } : {}), ...e.env },
    cwd: e.cwd,
    maxConcurrent: e.maxConcurrent,
  };
}

/** Kokoro-FastAPI and ComfyUI run from their checkout: `cwd`, else the preset's `model`. */
function withCwd(e: StoredEngine): StoredEngine {
  const cwd = e.cwd ?? e.model;
  return cwd ? { ...e, cwd } : e;
}

/** Features a chat template implies: streaming always, tool use when it renders tools. */
function llmFeatures(template: string | undefined): Feature[] {
  return template && /\btools\b/.test(template) ? ["streaming", "tool-use"] : ["streaming"];
}

async function llamaServer(e: StoredEngine): Promise<EngineSpec[]> {
  const path = e.model ?? "";
  let files: string[];
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
    files = isDir
      ? (await readdir(path))
          .filter((f) => f.toLowerCase().endsWith(".gguf") && !NOT_A_MODEL.test(f))
          .sort()
          .map((f) => join(path, f))
      : [path];
  } catch (err) {
    throw new UserError(
      "engine_model_missing",
      `engine ${e.name}: cannot read ${path}: ${(err as Error).message}`,
    );
  }
  if (files.length === 0)
    throw new UserError("engine_model_missing", `engine ${e.name}: no .gguf file in ${path}`);
  const out: EngineSpec[] = [];
  for (const file of files) {
    const header = await readGgufHeader(file).catch((err: unknown) => {
      throw new UserError("engine_model_invalid", `engine ${e.name}: ${describeError(err)}`);
    });
    const id = basename(file).replace(/(-00001-of-\d{5})?\.gguf$/i, "");
    // A directory gives one engine per file; the owner's `models` entry of that id refines it.
    const own = isDir ? e.models?.find((m) => m.id === id) : e.models?.[0];
    const m = model(own, id, "llm", llmFeatures(header.chatTemplate), header.contextLength ?? null);
    const name = isDir ? `${e.name}-${id.replace(/[^A-Za-z0-9._-]/g, "_")}`.slice(0, 64) : e.name;
    const command = [
      e.binary ?? "llama-server",
      "-m",
      file,
      ...HOST,
      "--alias",
      m.servedId,
      ...(e.args ?? []),
    ];
    out.push(spec({ ...e, name }, command, "llamacpp", [m]));
  }
  return out;
}

/**
 * The managed engines of one `engines` entry (a directory gives several). Reads GGUF headers.
 * @example
 * await expandEngine({ name: "local", preset: "llama-server", model: "/models" });
 * // one EngineSpec per .gguf file, named local-<file>
 */
export async function expandEngine(e: StoredEngine): Promise<EngineSpec[]> {
  const m = e.model ?? "";
  const tail = basename(m).replace(/\.[a-z0-9]+$/i, "");
  const args = e.args ?? [];
  switch (e.preset) {
    case "llama-server":
      return llamaServer(e);
    case "vllm": {
      const mine = model(e.models?.[0], m, "llm", ["streaming"]);
      const cmd = [
        e.binary ?? "vllm",
        "serve",
        m,
        ...HOST,
        "--served-model-name",
        mine.servedId,
        ...args,
      ];
      return [spec(e, cmd, "vllm", [mine, ...declared(e, "llm", ["streaming"]).slice(1)])];
    }
    case "whisper-server": {
      const mine = model(e.models?.[0], tail || "whisper", "stt", ["timestamps"]);
      return [
        spec(e, [e.binary ?? "whisper-server", "-m", m, ...HOST, ...args], "whispercpp", [mine]),
      ];
    }
    case "kokoro": {
      // Kokoro-FastAPI is a FastAPI app run by uvicorn from its checkout (`model` or `cwd`).
      const cmd = [e.binary ?? "uvicorn", "api.src.main:app", ...HOST, ...args];
      const models = e.models?.length
        ? declared(e, "tts", [])
        : [model(undefined, "kokoro", "tts", [])];
      return [spec(withCwd(e), cmd, "kokoro", models)];
    }
    case "comfyui": {
      const cmd = [
        e.binary ?? "python",
        "main.py",
        "--listen",
        "127.0.0.1",
        "--port",
        "{port}",
        ...args,
      ];
      return [spec(withCwd(e), cmd, "comfyui", declared(e, "image", []))];
    }
    default: {
      const cmd =
        typeof e.command === "string" ? e.command.split(" ").filter(Boolean) : (e.command ?? []);
      return [spec(e, cmd, e.adapter ?? "openai", declared(e, "llm", ["streaming"]))];
    }
  }
}

/** Every managed engine of the setting, in order; names must stay unique after expansion. */
export async function expandEngines(
  list: readonly StoredEngine[],
  taken: readonly string[] = [],
): Promise<EngineSpec[]> {
  const out: EngineSpec[] = [];
  for (const e of list) out.push(...(await expandEngine(e)));
  const names = new Set(taken);
  for (const s of out) {
    if (names.has(s.name))
      throw new UserError(
        "engine_name_taken",
        `engine ${s.name}: the name is used twice (rename the entry or the service)`,
      );
    names.add(s.name);
  }
  return out;
}
