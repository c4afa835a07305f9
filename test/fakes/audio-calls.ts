/** Audio calls for adapters' `execute`, as the gateway builds them, and byte-level readers. */
import { Readable } from "node:stream";
import type { DiscoveredModel, EngineCall, Upstream } from "../../adapters/adapter.ts";
import { findEndpoint } from "../../src/protocol/index.ts";

/** One form part: a text field, or a file. */
export type PartSpec =
  { name: string; value: string } | { name: string; filename: string; type: string; data: Buffer };

/** A multipart/form-data body as browsers and the openai client write it. */
export function formBody(parts: PartSpec[], boundary = "----fakeboundary7MA4YWxkTrZu0gW"): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const head =
      "value" in p
        ? `Content-Disposition: form-data; name="${p.name}"\r\n\r\n`
        : `Content-Disposition: form-data; name="${p.name}"; filename="${p.filename}"\r\nContent-Type: ${p.type}\r\n\r\n`;
    chunks.push(
      Buffer.from(`--${boundary}\r\n${head}`),
      "value" in p ? Buffer.from(p.value) : p.data,
      Buffer.from("\r\n"),
    );
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

/** `bytes` in pieces of `size` (a body arriving over a slow tunnel). */
export function pieces(bytes: Buffer, size: number): Readable {
  const out: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) out.push(bytes.subarray(i, i + size));
  return Readable.from(out);
}

const never = (): AbortSignal => new AbortController().signal;

/** A transcription call carrying `parts` as multipart, streamed in pieces of `chunk` bytes. */
export function transcriptionCall(
  upstream: Upstream,
  model: DiscoveredModel,
  parts: PartSpec[],
  signal: AbortSignal = never(),
  chunk = 4096,
): EngineCall {
  const boundary = "----fakeboundary7MA4YWxkTrZu0gW";
  return {
    endpoint: findEndpoint("POST", "/v1/audio/transcriptions")!,
    path: "/v1/audio/transcriptions",
    headers: {
      "content-type": `multipart/form-data; boundary=${boundary}`,
      accept: "application/json",
    },
    stream: pieces(formBody(parts, boundary), chunk),
    model,
    upstream,
    signal,
  };
}

/** A speech call; `json.model` is set to the served id, as the gateway does. */
export function speechCall(
  upstream: Upstream,
  model: DiscoveredModel,
  json: Record<string, unknown>,
  signal: AbortSignal = never(),
): EngineCall {
  return {
    endpoint: findEndpoint("POST", "/v1/audio/speech")!,
    path: "/v1/audio/speech",
    headers: { "content-type": "application/json", accept: "application/octet-stream" },
    json: { ...json, model: model.servedId },
    model,
    upstream,
    signal,
  };
}

/** `GET /v1/audio/voices?model=<id>` for `model`. */
export function voicesCall(
  upstream: Upstream,
  model: DiscoveredModel,
  signal: AbortSignal = never(),
): EngineCall {
  return {
    endpoint: findEndpoint("GET", "/v1/audio/voices")!,
    path: `/v1/audio/voices?model=${encodeURIComponent(model.id)}`,
    headers: { accept: "application/json" },
    model,
    upstream,
    signal,
  };
}

/** The whole body as bytes. */
export async function readBytes(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The first chunk of a body, leaving the rest to be read. */
export async function firstChunk(body: Readable): Promise<Buffer> {
  for await (const chunk of body.iterator({ destroyOnReturn: false })) return chunk as Buffer;
  throw new Error("the body ended before its first chunk");
}
