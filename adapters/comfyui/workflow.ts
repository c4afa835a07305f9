/**
 * One ComfyUI workflow file, as an operator installs it (docs/comfyui-workflows.md): an
 * API-format graph (`workflow`), the club's facts about it (`club`: model id, type, output
 * nodes) and which node inputs the request fields set (`inputs`). Nodes are named by id,
 * `_meta.title` or `class_type`, resolved once here; every problem of a file is reported at once.
 */
import { arr, obj, str } from "../kit/fields.ts";

/** A node of an API-format graph. Links between nodes are `[nodeId, outputIndex]` inputs. */
export interface GraphNode {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string };
}

export type Graph = Record<string, GraphNode>;

/** Request fields a workflow can take; `size` (`WxH`) sets a `width` and a `height`. */
export const FIELDS = [
  "prompt",
  "negative_prompt",
  "n",
  "seed",
  "steps",
  "guidance_scale",
  "denoise",
  "width",
  "height",
  "num_frames",
  "fps",
  "image",
  "mask",
] as const;
export type Field = (typeof FIELDS)[number];

/** One node input a field sets. */
export interface Target {
  node: string;
  input: string;
}

/** A workflow ready to run: the file's facts with every node resolved to its id. */
export interface Workflow {
  /** Where it came from, for messages: a file path or `template <name>`. */
  source: string;
  /** The id consumers ask for. */
  model: string;
  type: "image" | "video";
  graph: Graph;
  targets: Partial<Record<Field, Target[]>>;
  size?: { width: Target; height: Target };
  /** Node ids whose files are the answer; all output nodes when absent. */
  outputs?: string[];
  /** The content-type of the answer, when the file says (video workflows). */
  contentType?: string;
}

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const MIME = /^[\w.+-]+\/[\w.+-]+$/;

/** The graph of a file, or why it is not an API-format graph. */
function readGraph(value: unknown, problems: string[]): Graph {
  const graph: Graph = {};
  const raw = obj(value);
  if (Array.isArray(raw.nodes) && Array.isArray(raw.links)) {
    problems.push('"workflow" is in the UI format: export it with "Save (API Format)"');
    return graph;
  }
  for (const [id, node] of Object.entries(raw)) {
    const n = obj(node);
    const classType = str(n.class_type);
    if (!classType || typeof n.inputs !== "object" || n.inputs === null) {
      problems.push(`"workflow" node ${id} has no class_type and inputs`);
      continue;
    }
    graph[id] = { ...(n as unknown as GraphNode), inputs: obj(n.inputs) };
  }
  if (Object.keys(graph).length === 0 && problems.length === 0)
    problems.push('"workflow" holds no nodes');
  return graph;
}

/** The id of the one node `selector` names: its id, else its `_meta.title`, else its class. */
export function findNode(graph: Graph, selector: string): string {
  if (graph[selector]) return selector;
  const ids = Object.keys(graph);
  for (const match of [
    (id: string) => graph[id]?._meta?.title === selector,
    (id: string) => graph[id]?.class_type === selector,
  ]) {
    const found = ids.filter(match);
    if (found.length === 1) return found[0] ?? "";
    if (found.length > 1)
      throw new Error(
        `node "${selector}" matches nodes ${found.join(", ")}: name one by id or a unique _meta.title`,
      );
  }
  throw new Error(`node "${selector}" matches no node id, _meta.title or class_type`);
}

function target(graph: Graph, node: unknown, input: unknown, where: string): Target {
  const selector = str(node);
  const name = str(input);
  if (!selector || !name) throw new Error(`${where} needs "node" and "input"`);
  const id = findNode(graph, selector);
  const value = graph[id]?.inputs[name];
  if (value === undefined) throw new Error(`${where}: node ${id} has no input "${name}"`);
  if (Array.isArray(value)) throw new Error(`${where}: ${id}.${name} is a link, not a value`);
  return { node: id, input: name };
}

function readInputs(raw: unknown, graph: Graph, wf: Workflow, problems: string[]): void {
  for (const [key, value] of Object.entries(obj(raw))) {
    const where = `inputs.${key}`;
    try {
      if (key === "size") {
        const v = obj(value);
        wf.size = {
          width: target(graph, v.node, v.width, where),
          height: target(graph, v.node, v.height, where),
        };
      } else if ((FIELDS as readonly string[]).includes(key)) {
        const list = Array.isArray(value) ? arr(value) : [value];
        wf.targets[key as Field] = list.map((t) => target(graph, obj(t).node, obj(t).input, where));
      } else problems.push(`${where}: unknown field (use ${FIELDS.join(", ")} or size)`);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  if (wf.targets.mask && !wf.targets.image) problems.push("inputs.mask needs inputs.image too");
}

/**
 * Reads one workflow file's JSON. Throws an Error naming `source` and every problem found.
 * @example parseWorkflow(JSON.parse(text), "/etc/club-provider/workflows/sdxl.json")
 */
export function parseWorkflow(json: unknown, source: string): Workflow {
  const problems: string[] = [];
  const root = obj(json);
  const club = obj(root.club);
  const graph = readGraph(root.workflow, problems);
  const model = str(club.model) ?? "";
  if (!MODEL_ID.test(model))
    problems.push(
      `club.model ${JSON.stringify(club.model)} is not a model id (A-Z a-z 0-9 . _ : / -)`,
    );
  const type = club.type;
  if (type !== "image" && type !== "video")
    problems.push(`club.type must be "image" or "video", got ${JSON.stringify(type)}`);
  const wf: Workflow = {
    source,
    model,
    type: type === "video" ? "video" : "image",
    graph,
    targets: {},
  };
  if (problems.length === 0) readInputs(root.inputs, graph, wf, problems);
  if (!wf.targets.prompt) problems.push("inputs.prompt is missing: a workflow takes a prompt");
  if (wf.targets.mask && wf.type !== "image") problems.push("inputs.mask: only image workflows");
  const outputs = club.output === undefined ? [] : arr([club.output].flat());
  try {
    if (outputs.length) wf.outputs = outputs.map((o) => findNode(graph, str(o) ?? ""));
  } catch (err) {
    problems.push(`club.output: ${(err as Error).message}`);
  }
  const contentType = club.content_type;
  if (contentType !== undefined) {
    if (typeof contentType === "string" && MIME.test(contentType)) wf.contentType = contentType;
    else problems.push(`club.content_type ${JSON.stringify(contentType)} is not a media type`);
  }
  if (problems.length) throw new Error(`${source}: ${problems.join("; ")}`);
  return wf;
}
