/** Workflow runs as they are stored. */
import type { JobError, StoredRecord } from "../jobs/types.ts";
import type { Spec, StepType } from "./spec.ts";

/** A run's life; AWAITING while a gate waits for a person. */
export type RunStatus = "PENDING" | "RUNNING" | "AWAITING" | "DONE" | "FAILED" | "CANCELED";
/** A step is SKIPPED when the run ended (failed, canceled, rejected) before it could start. */
export type StepStatus = RunStatus | "SKIPPED";

/** Every run status (for `?status=`). */
export const RUN_STATUSES: readonly RunStatus[] = [
  "PENDING",
  "RUNNING",
  "AWAITING",
  "DONE",
  "FAILED",
  "CANCELED",
];

/** Whether a run or step status is final. */
export const isRunOver = (s: StepStatus): boolean =>
  s === "DONE" || s === "FAILED" || s === "CANCELED" || s === "SKIPPED";

/** One step of a run as it stands. */
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

/** One workflow run: its spec, inputs, models, and each step's state. */
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
