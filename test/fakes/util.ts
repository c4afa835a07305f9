/** Small helpers for tests that talk to fakes over real sockets. */
import { createServer, type Server, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { findEndpoint } from "../../src/protocol/index.ts";
import type { DiscoveredModel, EngineCall, Upstream } from "../../adapters/adapter.ts";

/** A port nothing listens on (bound once, then released). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A TCP server that accepts connections and never answers (like vLLM while it loads). */
export async function silentServer(): Promise<{ url: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The whole body as text. */
export async function readAll(body: Readable): Promise<string> {
  let text = "";
  for await (const chunk of body) text += (chunk as Buffer).toString("utf8");
  return text;
}

/** Reads from an SSE body until one complete event (or comment) arrived; returns what was read. */
export async function readUntil(body: Readable, marker: string): Promise<string> {
  let text = "";
  // Leaving a plain `for await` early would destroy the stream; the caller reads on.
  for await (const chunk of body.iterator({ destroyOnReturn: false })) {
    text += (chunk as Buffer).toString("utf8");
    if (text.includes(marker)) return text;
  }
  throw new Error(`stream ended before ${JSON.stringify(marker)}`);
}

/** The concatenated `delta.content` (or `text`) of an SSE completion stream. */
export function sseContent(text: string): string {
  let out = "";
  for (const line of text.split("\n")) {
    if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
    const event = JSON.parse(line.slice(6)) as {
      choices: { delta?: { content?: string | null }; text?: string }[];
    };
    const choice = event.choices[0];
    out += choice?.delta?.content ?? choice?.text ?? "";
  }
  return out;
}

/** A chat call for an adapter's `execute`. */
export function chatCall(
  upstream: Upstream,
  model: DiscoveredModel,
  json: Record<string, unknown>,
  signal: AbortSignal = new AbortController().signal,
): EngineCall {
  return {
    endpoint: findEndpoint("POST", "/v1/chat/completions")!,
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json", accept: "application/json" },
    json: { model: model.servedId, ...json },
    model,
    upstream,
    signal,
  };
}
