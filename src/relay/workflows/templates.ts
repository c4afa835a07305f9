/**
 * Workflow templates: a spec over named inputs. The curated ones are in `catalog.ts`; this file
 * says what a template is and how the API shows it.
 */
import type { Spec } from "./spec.ts";

/** One input a template takes. */
export interface TemplateInput {
  name: string;
  description: string;
  type: "string" | "integer";
  required: boolean;
  min?: number;
  max?: number;
}

/** A curated workflow: a spec over named inputs. */
export interface Template {
  key: string;
  title: string;
  description: string;
  inputs: TemplateInput[];
  spec: Spec;
}

/** A template's public shape: what it does, its inputs, and its steps. */
export function templateView(t: Template): Record<string, unknown> {
  return {
    key: t.key,
    object: "workflow.template",
    title: t.title,
    description: t.description,
    required_inputs: t.inputs.filter((i) => i.required).map((i) => i.name),
    inputs: t.inputs,
    spec: t.spec,
  };
}
