/**
 * Whether a workflow can run on this ComfyUI: every node class exists, every list-valued input
 * it fixes (a checkpoint, a LoRA, a VAE, a sampler name) is among the values ComfyUI offers,
 * and every number it fixes is within the input's `min` and `max`, as `GET /object_info/{class}`
 * lists them (ComfyUI refuses the whole prompt otherwise). Inputs the request sets are not
 * checked: their values are the placeholders of the exported graph.
 */
import type { Upstream } from "../adapter.ts";
import { arr, obj } from "../kit/fields.ts";
import { getJson } from "../kit/openai-style.ts";
import type { Workflow } from "./workflow.ts";

/** `/object_info/{class}` answers, by class, for one describe (null: not installed). */
export type NodeInfoCache = Map<string, Promise<Record<string, unknown> | null>>;

function nodeInfo(
  upstream: Upstream,
  classType: string,
  signal: AbortSignal,
  cache: NodeInfoCache,
): Promise<Record<string, unknown> | null> {
  let info = cache.get(classType);
  if (!info) {
    info = getJson(upstream, `/object_info/${encodeURIComponent(classType)}`, signal).then(
      (answer) => {
        const found = obj(answer.json)[classType];
        return answer.status === 200 && found !== undefined ? obj(found) : null;
      },
    );
    cache.set(classType, info);
  }
  return info;
}

/**
 * The values a combo input offers: `[["a", "b"], {...}]`, or `["COMBO", {"options": [...]}]`
 * in newer node schemas; undefined for any other input type, and for a COMBO without an
 * options list (`LoadImageOutput`'s `image`, which names a file chosen at run time).
 */
export function comboOptions(spec: unknown): unknown[] | undefined {
  const [kind, extra] = arr(spec);
  if (Array.isArray(kind)) return kind as unknown[];
  const options = obj(extra).options;
  if (kind === "COMBO" && Array.isArray(options)) return options as unknown[];
  return undefined;
}

/** Why a fixed number is outside its `INT`/`FLOAT` input's `min`/`max`, if it is. */
export function outOfRange(spec: unknown, value: unknown): string | undefined {
  const [kind, extra] = arr(spec);
  if ((kind !== "INT" && kind !== "FLOAT") || typeof value !== "number") return undefined;
  const { min, max } = obj(extra);
  if (typeof min === "number" && value < min) return `${value} is below its min ${min}`;
  if (typeof max === "number" && value > max) return `${value} is above its max ${max}`;
  return undefined;
}

function inputSpec(info: Record<string, unknown>, name: string): unknown {
  const input = obj(info.input);
  return obj(input.required)[name] ?? obj(input.optional)[name];
}

/**
 * What stops `wf` from running on this ComfyUI, in words (`CheckpointLoaderSimple.ckpt_name
 * "sd_xl_base_1.0.safetensors" is not installed`, `node 7 LTXVScheduler.max_shift 200 is above
 * its max 100`); empty when it can run. Rejects only when ComfyUI cannot be asked.
 */
export async function missingParts(
  upstream: Upstream,
  wf: Workflow,
  signal: AbortSignal,
  cache: NodeInfoCache,
): Promise<string[]> {
  const set = new Set(
    Object.values(wf.targets)
      .flat()
      .map((t) => `${t.node}.${t.input}`),
  );
  const missing: string[] = [];
  for (const [id, node] of Object.entries(wf.graph)) {
    const info = await nodeInfo(upstream, node.class_type, signal, cache);
    if (!info) {
      missing.push(`node class ${node.class_type} is not installed (a custom node?)`);
      continue;
    }
    for (const [name, value] of Object.entries(node.inputs)) {
      if (set.has(`${id}.${name}`)) continue;
      const spec = inputSpec(info, name);
      const options = typeof value === "string" ? comboOptions(spec) : undefined;
      if (options && !options.includes(value))
        missing.push(`${node.class_type}.${name} ${JSON.stringify(value)} is not installed`);
      const range = outOfRange(spec, value);
      if (range) missing.push(`node ${id} ${node.class_type}.${name} ${range}`);
    }
  }
  return [...new Set(missing)];
}
