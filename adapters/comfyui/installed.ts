/**
 * Whether a workflow can run on this ComfyUI: every node class exists, and every list-valued
 * input it fixes (a checkpoint, a LoRA, a VAE, a sampler name) is among the values ComfyUI
 * offers, as `GET /object_info/{class}` lists them. Inputs the request sets (`image`, `mask`)
 * are not checked: their values are the placeholders of the exported graph.
 */
import type { Upstream } from "../adapter.ts";
import { arr, obj } from "../fields.ts";
import { getJson } from "../openai-style.ts";
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
 * in newer node schemas; undefined for any other input type.
 */
export function comboOptions(spec: unknown): unknown[] | undefined {
  const [kind, extra] = arr(spec);
  if (Array.isArray(kind)) return kind as unknown[];
  if (kind === "COMBO") return arr(obj(extra).options);
  return undefined;
}

function inputSpec(info: Record<string, unknown>, name: string): unknown {
  const input = obj(info.input);
  return obj(input.required)[name] ?? obj(input.optional)[name];
}

/**
 * What `wf` needs that this ComfyUI lacks, in words (`CheckpointLoaderSimple.ckpt_name
 * "sd_xl_base_1.0.safetensors" is not installed`); empty when it can run. Rejects only when
 * ComfyUI cannot be asked.
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
      if (typeof value !== "string" || set.has(`${id}.${name}`)) continue;
      const options = comboOptions(inputSpec(info, name));
      if (options && !options.includes(value))
        missing.push(`${node.class_type}.${name} ${JSON.stringify(value)} is not installed`);
    }
  }
  return [...new Set(missing)];
}
