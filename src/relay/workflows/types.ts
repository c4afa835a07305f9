/** Workflow runs as they are stored. */
import type { JobError, StoredRecord } from "../jobs/types.ts";
import type { Spec, StepType } from "./spec.ts";

export type RunStatus = "PENDING" | "RUNNING" | "AWAITING" | "DONE" | "FAILED" | "CANCELED";
/** A step is SKIPPED when the run ended (failed, canceled, rejected) before it could start. */
export type StepStatus = RunStatus | "SKIPPED";

export const RUN_STATUSES: readonly RunStatus[] = [
  "PENDING",
  "RUNNING",
  "AWAITING",
  "DONE",
  "FAILED",
  "CANCELED",
];

export const isRunOver = (s: StepStatus): boolean =>
  s === "DONE" || s === "FAILED" || s === "CANCELED" || s === "SKIPPED";

export interface StepState {
  id: string;
  status: StepStatus;
  /** The jobs an inference or map step submitted, in item order. */
  jobs?: string[];
  output?: unknown;
  error?: JobError;
  started?: number;
  finished?: number;
}

export interface RunRecord extends StoredRecord {
  kind: "run";
  status: RunStatus;
  template?: string;
  spec: Spec;
  inputs: Record<string, unknown>;
  /** The model each step type uses when a step names none. */
  models: Partial<Record<StepType, string>>;
  steps: StepState[];
  error?: JobError;
  finished?: number;
}
