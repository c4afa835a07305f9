/**
 * Calls for the media adapters' `execute` (images, video, music, voice, 3D), as the gateway
 * builds them: JSON with `model` set to the served id, or a multipart body streamed in pieces.
 */
import type { DiscoveredModel, EngineCall, Upstream } from "../../adapters/adapter.ts";
import { findEndpoint } from "../../src/protocol/index.ts";
import { formBody, pieces, type PartSpec } from "./audio-calls.ts";

const never = (): AbortSignal => new AbortController().signal;

/** A JSON call to `path` (`/v1/images/generations`, `/v1/music/generations`, …). */
export function jsonCall(
  path: string,
  upstream: Upstream,
  model: DiscoveredModel,
  json: Record<string, unknown>,
  signal: AbortSignal = never(),
  progress?: (fraction: number | null, detail?: string) => void,
): EngineCall {
  return {
    endpoint: findEndpoint("POST", path)!,
    path,
    headers: { "content-type": "application/json", accept: "application/json" },
    json: { ...json, model: model.servedId },
    model,
    upstream,
    signal,
    ...(progress ? { progress } : {}),
  };
}

/** A multipart call to `path` carrying `parts`. */
export function formCall(
  path: string,
  upstream: Upstream,
  model: DiscoveredModel,
  parts: PartSpec[],
  signal: AbortSignal = never(),
): EngineCall {
  const boundary = "----mediaboundary9f8e7d6c5b4a";
  return {
    endpoint: findEndpoint("POST", path)!,
    path,
    headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
    stream: pieces(formBody(parts, boundary), 4096),
    model,
    upstream,
    signal,
  };
}

/** A file part. */
export function filePart(
  name: string,
  data: Buffer,
  type = "image/png",
  filename = "in.png",
): PartSpec {
  return { name, filename, type, data };
}
