/** The adapters this build knows, in probe priority order: specific engines before the catch-all. */
import type { Adapter } from "./adapter.ts";
import koboldcpp from "./koboldcpp.ts";
import kokoro from "./kokoro.ts";
import llamacpp from "./llamacpp.ts";
import lmstudio from "./lmstudio.ts";
import localai from "./localai.ts";
import ollama from "./ollama.ts";
import openaiCompatible from "./openai-compatible.ts";
import sglang from "./sglang.ts";
import speaches from "./speaches.ts";
import tabbyapi from "./tabbyapi.ts";
import textgenWebui from "./textgen-webui.ts";
import vllm from "./vllm.ts";
import whispercpp from "./whispercpp.ts";

export type * from "./adapter.ts";

/**
 * Every adapter, most specific first; auto-detection and probes try them in this order. Each
 * LLM engine is told by a decisive field (engines.md §10), not by a route others copy: TabbyAPI
 * comes before KoboldCpp because it answers KoboldCpp's `/api/extra/version`; the generic
 * OpenAI adapter comes last.
 */
export const adapters: readonly Adapter[] = [
  llamacpp(),
  whispercpp(),
  ollama(),
  vllm(),
  sglang(),
  lmstudio(),
  tabbyapi(),
  koboldcpp(),
  textgenWebui(),
  kokoro(),
  speaches(),
  localai(),
  openaiCompatible(),
];

/** The adapter configured as `engine: <name>`, or undefined for an unknown name. */
export function findAdapter(name: string): Adapter | undefined {
  return adapters.find((a) => a.name === name);
}
