/**
 * The `engines` setting: engines the daemon starts itself, on demand. Each entry is either a
 * command line with `{port}` (and `{gpu}`) placeholders and the models it serves, or a preset
 * (`llama-server`, `vllm`, `whisper-server`, `kokoro`, `comfyui`) that fills those in. Checked
 * once here; every problem is reported together, naming the entry and the field.
 */
import { FEATURES, SERVICE_TYPES, type Feature, type ServiceType } from "../protocol/manifest.ts";

export const PRESETS = ["llama-server", "vllm", "whisper-server", "kokoro", "comfyui"] as const;
export type PresetName = (typeof PRESETS)[number];

/** One model a managed engine serves: the facts detection would otherwise read. */
export interface StoredEngineModel {
  /** The id the club asks for. */
  id: string;
  /** The id the engine expects in request bodies; default `id`. */
  servedId?: string;
  /** Default `llm` (a preset's own type for the others). */
  type?: ServiceType;
  contextLength?: number;
  features?: Feature[];
}

/** One `engines` entry as stored. */
export interface StoredEngine {
  /** Unique among engines and services: `engines start NAME`, logs, metrics. */
  name: string;
  preset?: PresetName;
  /**
   * The command and its arguments (no shell); `{port}` is the port the daemon chose, `{gpu}` the
   * GPU indices joined by commas. A string is split at spaces.
   */
  command?: string | string[];
  /** Presets: the GGUF file or directory (llama-server), model (vllm, whisper), install dir. */
  model?: string;
  /** Presets: the program to run instead of the preset's (`/opt/llama/llama-server`). */
  binary?: string;
  /** Presets: arguments added after the preset's own. */
  args?: string[];
  /** The adapter that forwards to it and, by default, checks its health (`llamacpp`). */
  adapter?: string;
  models?: StoredEngineModel[];
  /** GPU indices it runs on; its VRAM is counted on each. Empty: no GPU. */
  gpus?: number[];
  /** VRAM it needs on each of its GPUs; measured on the first run when absent. */
  vramMiB?: number;
  /** A path that answers 2xx once it serves (`/health`); default the adapter's own probe. */
  health?: string;
  /** Stopped after this long without requests (default 600); 0: kept running. */
  idleSeconds?: number;
  /** Most time it may take to become healthy before the start counts as failed (default 300). */
  startSeconds?: number;
  /** Fixed port; default a free loopback port chosen at each start. */
  port?: number;
  env?: Record<string, string>;
  cwd?: string;
  /** Requests sent to it at once; default what the engine reports once running, else 1. */
  maxConcurrent?: number;
}

/** A model of a managed engine with every fact filled in. */
export interface EngineModel {
  id: string;
  servedId: string;
  type: ServiceType;
  contextLength: number | null;
  features: Feature[];
}

/** A managed engine once its preset is expanded: everything the supervisor needs. */
export interface EngineSpec {
  name: string;
  /** argv with placeholders still in it. */
  command: string[];
  adapter: string;
  models: EngineModel[];
  gpus: number[];
  vramMiB: number | undefined;
  health: string | undefined;
  idleMs: number;
  startMs: number;
  port: number | undefined;
  env: Record<string, string>;
  cwd: string | undefined;
  maxConcurrent: number | undefined;
}

/** Limits shared by all managed engines. */
export interface EngineSettings {
  /** How long a request waits for a cold engine before 503 (`engineWaitSeconds`, default 120). */
  waitMs: number;
  /** VRAM kept free on each GPU (`vramReserveMiB`, default 512). */
  reserveMiB: number;
  /** A GPU's budget set by the owner, by index (`vramBudgetMiB`), instead of total − reserve. */
  budgetMiB: Record<string, number>;
  /** Failed starts in a row before its models are withdrawn (`engineMaxFailures`, default 3). */
  maxFailures: number;
  /** SIGTERM, then this long before SIGKILL of the group (`engineStopSeconds`, default 10). */
  stopMs: number;
  /** Lines of output kept per engine (`engineLogLines`, default 500). */
  logLines: number;
  /** First wait before starting again after a failure, doubled each time (`engineRetrySeconds`, 2). */
  retryBaseMs: number;
}

export const ENGINE_DEFAULTS = {
  idleSeconds: 600,
  startSeconds: 300,
  waitSeconds: 120,
  reserveMiB: 512,
  maxFailures: 3,
  stopSeconds: 10,
  logLines: 500,
  retrySeconds: 2,
} as const;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const FIELDS = new Set([
  "name",
  "preset",
  "command",
  "model",
  "binary",
  "args",
  "adapter",
  "models",
  "gpus",
  "vramMiB",
  "health",
  "idleSeconds",
  "startSeconds",
  "port",
  "env",
  "cwd",
  "maxConcurrent",
]);
const MODEL_FIELDS = new Set(["id", "servedId", "type", "contextLength", "features"]);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
// JSON.stringify returns undefined for undefined (its types say otherwise).
const show = (v: unknown): string => (v === undefined ? "undefined" : JSON.stringify(v));

function num(
  e: Obj,
  key: string,
  at: string,
  min: number,
  max: number,
  problems: string[],
  integer = true,
): void {
  const v = e[key];
  if (v === undefined) return;
  if (typeof v !== "number" || (integer && !Number.isInteger(v)) || v < min || v > max)
    problems.push(
      `${at}.${key}: expected ${integer ? "an integer" : "a number"} from ${min} to ${max}, got ${show(v)}`,
    );
}

function strings(v: unknown, at: string, problems: string[], max = 256): v is string[] {
  if (!Array.isArray(v) || v.length > max || v.some((s) => typeof s !== "string" || s === "")) {
    problems.push(`${at}: expected a list of at most ${max} non-empty strings, got ${show(v)}`);
    return false;
  }
  return true;
}

function checkModel(m: unknown, at: string, problems: string[]): void {
  if (!isObj(m))
    return void problems.push(`${at}: expected an object with an "id", got ${show(m)}`);
  for (const k of Object.keys(m))
    if (!MODEL_FIELDS.has(k)) problems.push(`${at}: unknown field ${show(k)}`);
  if (typeof m.id !== "string" || m.id === "" || m.id.length > 256)
    problems.push(`${at}.id: expected a model id of 1-256 characters, got ${show(m.id)}`);
  if (m.servedId !== undefined && (typeof m.servedId !== "string" || m.servedId === ""))
    problems.push(`${at}.servedId: expected a non-empty string, got ${show(m.servedId)}`);
  if (m.type !== undefined && !SERVICE_TYPES.includes(m.type as ServiceType))
    problems.push(`${at}.type: expected one of ${SERVICE_TYPES.join(", ")}, got ${show(m.type)}`);
  num(m, "contextLength", at, 1, 1e9, problems);
  if (m.features !== undefined) {
    const bad = Array.isArray(m.features)
      ? m.features.filter((f) => !FEATURES.includes(f as Feature))
      : [m.features];
    if (bad.length)
      problems.push(`${at}.features: expected some of ${FEATURES.join(", ")}, got ${show(bad)}`);
  }
}

/**
 * Checks the stored `engines` list; returns every problem, each naming the entry and field.
 * @example
 * checkEngines([{ name: "qwen", preset: "llama-server", model: "/models/qwen.gguf" }]); // []
 */
export function checkEngines(value: unknown, serviceNames: readonly string[] = []): string[] {
  const problems: string[] = [];
  if (value === undefined) return problems;
  if (!Array.isArray(value)) return [`engines: expected a list, got ${show(value)}`];
  if (value.length > 256) problems.push(`engines: at most 256 engines, got ${value.length}`);
  const names = new Set<string>(serviceNames);
  for (const [i, e] of value.entries()) {
    let at = `engines[${i}]`;
    if (!isObj(e)) {
      problems.push(`${at}: expected an object, got ${show(e)}`);
      continue;
    }
    if (typeof e.name !== "string" || !NAME.test(e.name))
      problems.push(
        `${at}.name: expected 1-64 letters, digits, ".", "_" or "-", got ${show(e.name)}`,
      );
    else {
      if (names.has(e.name)) problems.push(`${at}.name: ${show(e.name)} is used twice`);
      names.add(e.name);
      at = `engines[${i}] (${e.name})`;
    }
    for (const k of Object.keys(e))
      if (!FIELDS.has(k)) problems.push(`${at}: unknown field ${show(k)}`);
    if (e.preset !== undefined && !PRESETS.includes(e.preset as PresetName))
      problems.push(`${at}.preset: expected one of ${PRESETS.join(", ")}, got ${show(e.preset)}`);
    if (e.preset === undefined && e.command === undefined)
      problems.push(`${at}: give a "command" (with {port}) or a "preset"`);
    if (e.preset !== undefined && e.command !== undefined)
      problems.push(`${at}: give a "command" or a "preset", not both`);
    if (e.command !== undefined) {
      const argv = typeof e.command === "string" ? e.command.split(" ").filter(Boolean) : e.command;
      if (strings(argv, `${at}.command`, problems, 1024)) {
        if (argv.length === 0) problems.push(`${at}.command: is empty`);
        if (e.port === undefined && !argv.some((a) => a.includes("{port}")))
          problems.push(`${at}.command: has no {port} placeholder and no "port" is set`);
      }
      if (typeof e.adapter !== "string" || e.adapter === "")
        problems.push(
          `${at}.adapter: a command needs the adapter that speaks to it (llamacpp, vllm, …)`,
        );
      if (!Array.isArray(e.models) || e.models.length === 0)
        problems.push(`${at}.models: a command needs the models it serves ([{"id": "…"}])`);
    }
    if (e.preset !== undefined && e.preset !== "comfyui" && e.preset !== "kokoro")
      if (typeof e.model !== "string" || e.model === "")
        problems.push(`${at}.model: the ${show(e.preset)} preset needs a "model"`);
    if (e.preset === "comfyui" && (!Array.isArray(e.models) || e.models.length === 0))
      problems.push(`${at}.models: the comfyui preset needs the workflows it serves as models`);
    for (const k of ["model", "binary", "adapter", "health", "cwd"] as const)
      if (e[k] !== undefined && (typeof e[k] !== "string" || e[k] === ""))
        problems.push(`${at}.${k}: expected a non-empty string, got ${show(e[k])}`);
    if (typeof e.health === "string" && !e.health.startsWith("/"))
      problems.push(`${at}.health: expected a path starting with "/", got ${show(e.health)}`);
    if (e.args !== undefined) strings(e.args, `${at}.args`, problems, 1024);
    if (e.models !== undefined) {
      if (!Array.isArray(e.models) || e.models.length > 1000)
        problems.push(`${at}.models: expected a list of at most 1000 models`);
      else {
        e.models.forEach((m, j) => checkModel(m, `${at}.models[${j}]`, problems));
        const ids = e.models.map((m) => (isObj(m) ? m.id : undefined));
        const twice = ids.find((id, j) => id !== undefined && ids.indexOf(id) !== j);
        if (twice !== undefined) problems.push(`${at}.models: ${show(twice)} is listed twice`);
      }
    }
    if (e.gpus !== undefined) {
      const g = e.gpus;
      if (
        !Array.isArray(g) ||
        g.length > 64 ||
        g.some((n) => !Number.isInteger(n) || (n as number) < 0 || (n as number) > 1024)
      )
        problems.push(`${at}.gpus: expected a list of GPU indices (0, 1, …), got ${show(g)}`);
    }
    num(e, "vramMiB", at, 0, 16 * 1024 * 1024, problems);
    num(e, "idleSeconds", at, 0, 365 * 86400, problems, false);
    num(e, "startSeconds", at, 1, 86400, problems, false);
    num(e, "port", at, 1, 65535, problems);
    num(e, "maxConcurrent", at, 1, 100000, problems);
    if (e.env !== undefined) {
      const env = e.env;
      if (!isObj(env) || Object.values(env).some((v) => typeof v !== "string"))
        problems.push(`${at}.env: expected names and string values, got ${show(env)}`);
      else if (Object.keys(env).some((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)))
        problems.push(
          `${at}.env: ${show(Object.keys(env))} holds a name that is not a variable name`,
        );
    }
  }
  return problems;
}

/** Fills `{port}` and `{gpu}` in one argument or environment value. */
export function fillPlaceholders(text: string, port: number, gpus: readonly number[]): string {
  return text.replaceAll("{port}", String(port)).replaceAll("{gpu}", gpus.join(","));
}
