/** The adapters this build knows, in probe priority order: specific engines before the catch-all. */
import acestep from "./acestep.ts";
import type { Adapter } from "./adapter.ts";
import comfyui from "./comfyui.ts";
import dia from "./dia.ts";
import hunyuan3d from "./hunyuan3d.ts";
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
 * OpenAI adapter comes last. Dia-TTS-Server and Hunyuan3D-2 come first: they answer nothing
 * while they generate, and only their own adapters know (from the job they sent) that such a
 * silence means busy; ComfyUI and ACE-Step are told by routes no other engine serves.
 */
export const adapters: readonly Adapter[] = [
  dia(),
  hunyuan3d(),
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
  comfyui(),
  acestep(),
  localai(),
  openaiCompatible(),
];

/** The adapter configured as `engine: <name>`, or undefined for an unknown name. */
export function findAdapter(name: string): Adapter | undefined {
  return adapters.find((a) => a.name === name);
}
