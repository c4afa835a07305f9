/** A ComfyUI service's own settings (`services[].comfyui` in the config), read from its upstream. */
import type { Upstream } from "../adapter.ts";

/** The settings under `services[].comfyui`, checked by the config's schema. */
export interface ComfyUISettings {
  /** Directory of the operator's workflow files; default `<config dir>/workflows`. */
  workflowsDir?: string;
}

/** This service's ComfyUI settings; none when its config entry has no `comfyui` section. */
export function comfyuiSettings(upstream: Upstream): ComfyUISettings {
  const own = upstream.settings?.comfyui;
  return typeof own === "object" && own !== null ? own : {};
}
