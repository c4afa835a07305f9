/**
 * The fake ComfyUI's `POST /prompt` validation, in the three 400 shapes ComfyUI 0.3.64 answers
 * (shared/reference/comfyui-captures/prompt_post_*.json): `invalid_prompt` for an unknown node
 * class (empty `node_errors`), `prompt_no_outputs` for a graph without an output node, and
 * `prompt_outputs_failed_validation` with `node_errors[id].errors[]` for values outside an
 * input's `min`/`max` or not among its options.
 */
import { OUTPUT_NODES, type FakeNode } from "./comfyui-jobs.ts";

type Spec = [unknown, Record<string, unknown>?];

function failed(type: string, message: string): Record<string, unknown> {
  return { type, message, details: "", extra_info: {} };
}

/** What ComfyUI says of one input's value, or undefined when it is fine. */
function check(name: string, spec: Spec, value: unknown): Record<string, unknown> | undefined {
  if (Array.isArray(value)) return undefined; // a link
  const [kind, extra = {}] = spec;
  const info = { input_name: name, input_config: spec, received_value: value };
  const error = (type: string, message: string) => ({
    type,
    message,
    details: name,
    extra_info: info,
  });
  if ((kind === "INT" || kind === "FLOAT") && typeof value === "number") {
    const { min, max } = extra as { min?: number; max?: number };
    if (min !== undefined && value < min)
      return error("value_smaller_than_min", `Value ${value} smaller than min of ${min}`);
    if (max !== undefined && value > max)
      return error("value_bigger_than_max", `Value ${value} bigger than max of ${max}`);
  }
  const options = Array.isArray(kind) ? kind : kind === "COMBO" ? extra.options : undefined;
  if (Array.isArray(options) && !options.includes(value))
    return {
      ...error("value_not_in_list", `Value not in list`),
      details: `${name}: '${String(value)}' not in ${JSON.stringify(options)}`,
    };
  return undefined;
}

/** ComfyUI's 400 body for `graph`, or undefined when it would queue it. */
export function refusePrompt(
  graph: Record<string, FakeNode>,
  schemas: Record<string, Record<string, unknown>>,
): Record<string, unknown> | undefined {
  const unknown = Object.entries(graph).find(([, n]) => !schemas[n.class_type]);
  if (unknown)
    return {
      error: {
        ...failed(
          "invalid_prompt",
          `Cannot execute because node ${unknown[1].class_type} does not exist.`,
        ),
        details: `Node ID '#${unknown[0]}'`,
      },
      node_errors: {},
    };
  const outputs = Object.keys(graph).filter((id) => OUTPUT_NODES.test(graph[id]!.class_type));
  if (outputs.length === 0)
    return { error: failed("prompt_no_outputs", "Prompt has no outputs"), node_errors: {} };
  const nodeErrors: Record<string, unknown> = {};
  for (const [id, node] of Object.entries(graph)) {
    const schema = schemas[node.class_type] ?? {};
    const errors = Object.entries(node.inputs).flatMap(([name, value]) => {
      const spec = schema[name];
      const found = Array.isArray(spec) ? check(name, spec as Spec, value) : undefined;
      return found ? [found] : [];
    });
    if (errors.length)
      nodeErrors[id] = { errors, dependent_outputs: outputs, class_type: node.class_type };
  }
  if (Object.keys(nodeErrors).length === 0) return undefined;
  return {
    error: failed("prompt_outputs_failed_validation", "Prompt outputs failed validation"),
    node_errors: nodeErrors,
  };
}
