/**
 * A run request: `{template, inputs, models}` or `{spec, inputs, models}`, checked whole.
 * Template inputs are checked against the template's declaration; optional ones left out are
 * null (and a body field that is exactly such an input is dropped).
 */
import { findEndpoint, type ModelCard } from "../../protocol/index.ts";
import { HttpError } from "../../http/error.ts";
import { STEP_TYPES, validateSpec, type Spec, type StepType } from "./spec.ts";
import { TEMPLATES } from "./catalog.ts";
import type { Template } from "./templates.ts";

/** A checked run request: the spec to run (a template's, expanded), its inputs and models. */
export interface RunRequest {
  template?: string;
  spec: Spec;
  inputs: Record<string, unknown>;
  models: Partial<Record<StepType, string>>;
}

const refuse = (problems: string[]): HttpError =>
  new HttpError(400, "invalid_request_error", problems.join("; "));

function templateInputs(t: Template, given: Record<string, unknown>): Record<string, unknown> {
  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const name of Object.keys(given))
    if (!t.inputs.some((i) => i.name === name))
      problems.push(
        `unknown input "${name}" (${t.key} takes ${t.inputs.map((i) => i.name).join(", ")})`,
      );
  for (const input of t.inputs) {
    const v = given[input.name];
    if (v === undefined || v === null) {
      if (input.required) problems.push(`input "${input.name}" is required: ${input.description}`);
      out[input.name] = null;
    } else if (input.type === "integer") {
      const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
      if (
        typeof n !== "number" ||
        !Number.isInteger(n) ||
        n < (input.min ?? 1) ||
        n > (input.max ?? Infinity)
      )
        problems.push(
          `input "${input.name}" must be a whole number from ${input.min} to ${input.max}`,
        );
      out[input.name] = n;
    } else if (typeof v !== "string" || v.trim() === "") {
      problems.push(`input "${input.name}" must be non-empty text`);
    } else out[input.name] = v;
  }
  if (problems.length > 0) throw refuse(problems);
  return out;
}

/** The checked request; a 400 `HttpError` listing every problem otherwise. */
export function runRequest(body: Record<string, unknown>): RunRequest {
  const { template: key, spec, inputs = {}, models = {} } = body;
  if ((key === undefined) === (spec === undefined))
    throw refuse(['send either "template" (see GET /v1/workflows/templates) or an inline "spec"']);
  if (typeof inputs !== "object" || inputs === null || Array.isArray(inputs))
    throw refuse(['"inputs" must be an object']);
  if (typeof models !== "object" || models === null || Array.isArray(models))
    throw refuse(['"models" must be an object of step type → model id']);
  const problems = Object.entries(models)
    .filter(([type, id]) => !Object.hasOwn(STEP_TYPES, type) || typeof id !== "string")
    .map(
      ([type]) =>
        `models.${type}: must be a model id, for one of ${Object.keys(STEP_TYPES).join(", ")}`,
    );
  if (problems.length > 0) throw refuse(problems);
  const chosen = models as Partial<Record<StepType, string>>;
  if (key !== undefined) {
    const t = TEMPLATES.find((x) => x.key === key);
    if (!t)
      throw refuse([
        `unknown template ${JSON.stringify(key)} (${TEMPLATES.map((x) => x.key).join(", ")})`,
      ]);
    const checked = templateInputs(t, inputs as Record<string, unknown>);
    return {
      template: t.key,
      spec: validateSpec(t.spec, checked),
      inputs: checked,
      models: chosen,
    };
  }
  const given = inputs as Record<string, unknown>;
  return { spec: validateSpec(spec, given), inputs: given, models: chosen };
}

/**
 * The model of each step type the run's steps need and do not name: the request's `models`,
 * else the first model (by id) of that service type the member can reach now.
 */
export function chooseModels(
  spec: Spec,
  requested: Partial<Record<StepType, string>>,
  cards: ModelCard[],
): Partial<Record<StepType, string>> {
  const models: Partial<Record<StepType, string>> = {};
  const problems: string[] = [];
  for (const step of spec.steps) {
    if (step.kind !== "inference" && step.kind !== "map") continue;
    if (step.model !== undefined || typeof step.body.model === "string") continue;
    const type = step.type;
    if (models[type] !== undefined) continue;
    const service = findEndpoint("POST", STEP_TYPES[type])?.serviceType;
    const id = requested[type] ?? cards.find((c) => c.service_type === service)?.id;
    if (id === undefined)
      problems.push(
        `step "${step.id}" needs a ${type} model and none of yours is online: pass "models": {"${type}": "<model id>"}`,
      );
    else models[type] = id;
  }
  if (problems.length > 0) throw new HttpError(404, "no_provider", problems.join("; "));
  return models;
}
