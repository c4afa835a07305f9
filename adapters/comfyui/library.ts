/**
 * The workflows a ComfyUI service may serve: the operator's files in the workflows directory,
 * then the templates shipped with club-provider. A model id has at most one workflow of each
 * kind: one that starts from the prompt alone, one that takes an image (images/edits without a
 * mask, image-to-video) and one that takes an image and a mask (inpainting). An operator's
 * file replaces a template of the same model id and kind.
 */
import { readFile, readdir } from "node:fs/promises";
import { comfyuiSettings } from "./settings.ts";
import { homedir } from "node:os";
import { join } from "node:path";
import type { Upstream } from "../adapter.ts";
import sdxlImg2img from "./templates/sdxl-img2img.json" with { type: "json" };
import sdxlInpaint from "./templates/sdxl-inpaint.json" with { type: "json" };
import sdxlTxt2img from "./templates/sdxl-txt2img.json" with { type: "json" };
import { parseWorkflow, type Workflow } from "./workflow.ts";

/** The workflows of one model id. */
export interface ModelWorkflows {
  model: string;
  type: "image" | "video";
  /** Starts from the prompt alone. */
  text?: Workflow;
  /** Takes an image (`inputs.image`). */
  image?: Workflow;
  /** Takes an image and a mask (`inputs.mask`). */
  mask?: Workflow;
}

/** Which of a model's workflows `wf` is. */
export function kindOf(wf: Workflow): "text" | "image" | "mask" {
  return wf.targets.mask ? "mask" : wf.targets.image ? "image" : "text";
}

/** What loading found: the models, and every file that was skipped, with why. */
export interface Library {
  models: Map<string, ModelWorkflows>;
  problems: string[];
}

const TEMPLATES: readonly [string, unknown][] = [
  ["sdxl-txt2img.json", sdxlTxt2img],
  ["sdxl-img2img.json", sdxlImg2img],
  ["sdxl-inpaint.json", sdxlInpaint],
];

/** Workflow files are small; anything larger is not one. */
const MAX_FILE_BYTES = 8 * 1024 * 1024;

/**
 * `<config dir>/workflows`: the directory beside the club-provider settings, found as the
 * settings store finds it (XDG_CONFIG_HOME on Linux, also under the systemd service).
 */
export function defaultWorkflowsDir(): string {
  const env = process.env;
  const base =
    process.platform === "darwin"
      ? join(homedir(), "Library", "Preferences")
      : process.platform === "win32"
        ? env.APPDATA || join(homedir(), "AppData", "Roaming")
        : env.XDG_CONFIG_HOME || join(homedir(), ".config");
  const dir = join(base, "club-provider");
  return join(process.platform === "win32" ? join(dir, "Config") : dir, "workflows");
}

async function operatorFiles(dir: string, configured: boolean, problems: string[]) {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith(".json")).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT" || configured)
      problems.push(`cannot read the workflows directory ${dir}: ${(err as Error).message}`);
    return [];
  }
  const files: [string, unknown][] = [];
  for (const name of names) {
    const path = join(dir, name);
    try {
      const text = await readFile(path, "utf8");
      if (text.length > MAX_FILE_BYTES) throw new Error("larger than 8 MiB");
      files.push([path, JSON.parse(text)]);
    } catch (err) {
      problems.push(`${path}: ${(err as Error).message}`);
    }
  }
  return files;
}

function add(
  models: Map<string, ModelWorkflows>,
  wf: Workflow,
  fromOperator: boolean,
): string | undefined {
  const kind = kindOf(wf);
  const entry = models.get(wf.model) ?? { model: wf.model, type: wf.type };
  if (entry.type !== wf.type)
    return `${wf.source}: model ${wf.model} is already a ${entry.type} model; skipped`;
  const taken = entry[kind];
  // An operator's file shadows a template quietly; two files of the operator clash.
  if (taken)
    return fromOperator
      ? `${wf.source}: model ${wf.model} (${kind}) is already defined by ${taken.source}; skipped`
      : undefined;
  entry[kind] = wf;
  models.set(wf.model, entry);
  return undefined;
}

/**
 * Loads the operator's workflows from the service's `comfyui.workflowsDir` (default
 * {@link defaultWorkflowsDir}), then the templates. Never rejects: unreadable or invalid files
 * are skipped and listed in `problems`.
 */
export async function loadLibrary(upstream: Upstream): Promise<Library> {
  const problems: string[] = [];
  const configured = comfyuiSettings(upstream).workflowsDir;
  const files = await operatorFiles(
    configured ?? defaultWorkflowsDir(),
    configured !== undefined,
    problems,
  );
  const models = new Map<string, ModelWorkflows>();
  const sources: [string, unknown, boolean][] = [
    ...files.map(([path, json]): [string, unknown, boolean] => [path, json, true]),
    ...TEMPLATES.map(([name, json]): [string, unknown, boolean] => [
      `template ${name}`,
      json,
      false,
    ]),
  ];
  for (const [source, json, fromOperator] of sources) {
    try {
      const problem = add(models, parseWorkflow(json, source), fromOperator);
      if (problem) problems.push(problem);
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  return { models, problems };
}
