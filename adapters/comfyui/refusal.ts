/**
 * Whose fault it is when ComfyUI refuses a prompt (`POST /prompt` answers 400, as ComfyUI
 * 0.3.64 does): `invalid_prompt` (a node class it lacks, empty `node_errors`),
 * `prompt_no_outputs`, or `prompt_outputs_failed_validation` with `node_errors[id].errors[]` of
 * `{type, message, details, extra_info: {input_name, received_value, …}}`. Only errors that all
 * fall on inputs the request set are the consumer's (400); anything else is in the workflow the
 * operator installed, so the rig's (502), named so the operator can fix the file.
 */
import { basename } from "node:path";
import { badRequest, type HttpError } from "../../src/http/error.ts";
import { UpstreamError } from "../../src/errors.ts";
import { arr, obj, str } from "../kit/fields.ts";

/** One error ComfyUI listed, and the input it is about when it says. */
interface NodeError {
  node: string;
  input: string | undefined;
  text: string;
}

function nodeErrors(body: Record<string, unknown>): NodeError[] {
  return Object.entries(obj(body.node_errors)).flatMap(([id, e]) => {
    const node = obj(e);
    const where = `node ${id}${str(node.class_type) ? ` (${str(node.class_type)})` : ""}`;
    return arr(node.errors).map((raw): NodeError => {
      const x = obj(raw);
      const input = str(obj(x.extra_info).input_name);
      const about = input ?? str(x.details);
      const text = `${where}${about ? ` ${about}` : ""}: ${str(x.message) ?? str(x.type) ?? "?"}`;
      return { node: id, input, text };
    });
  });
}

/**
 * The error to throw for ComfyUI's 400 `body`: a 400 `HttpError` when every error is on an
 * input in `written` (`node.input`, what the request set), else an `UpstreamError`
 * (`upstream_workflow_refused`) naming the workflow `source`, each node and the reason.
 * @example throw refusal(answer.json, written, wf.source);
 */
export function refusal(
  body: unknown,
  written: ReadonlySet<string>,
  source: string,
): HttpError | UpstreamError {
  const b = obj(body);
  const error = obj(b.error);
  const head = str(b.error) ?? str(error.message) ?? "the prompt was refused";
  const errors = nodeErrors(b);
  const consumers =
    errors.length > 0 && errors.every((e) => e.input && written.has(`${e.node}.${e.input}`));
  if (consumers)
    return badRequest(`ComfyUI refused the request: ${errors.map((e) => e.text).join("; ")}`);
  const details = str(error.details);
  const reasons = errors.length
    ? errors.map((e) => e.text)
    : [details ? `${head} (${details})` : head];
  return new UpstreamError(
    "upstream_workflow_refused",
    `ComfyUI refused the workflow ${basename(source)} (${str(error.type) ?? "no type"}): ${reasons.join("; ")}; the rig's operator must fix the file`,
  );
}
