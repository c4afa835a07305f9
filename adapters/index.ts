/** The adapters this build knows, in probe priority order: specific engines before the catch-all. */
import type { Adapter } from "./adapter.ts";
import llamacpp from "./llamacpp.ts";
import openaiCompatible from "./openai-compatible.ts";

export type * from "./adapter.ts";

/** Every adapter, most specific first; auto-detection and probes try them in this order. */
export const adapters: readonly Adapter[] = [llamacpp(), openaiCompatible()];

/** The adapter configured as `engine: <name>`, or undefined for an unknown name. */
export function findAdapter(name: string): Adapter | undefined {
  return adapters.find((a) => a.name === name);
}
