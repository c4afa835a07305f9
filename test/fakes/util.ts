/** Small helpers for tests that talk to fakes over real sockets. */
import { readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Readable } from "node:stream";
import { findEndpoint } from "../../src/protocol/index.ts";
import type { DiscoveredModel, EngineCall, Upstream } from "../../adapters/adapter.ts";

/**
 * Where `freePort` picks from: below the kernel's range for `listen(0)`, so that a port handed
 * out here and not yet bound (a daemon still starting, told `--status-port`) cannot be given
 * to another test's `listen(0)` meanwhile, which once had a CLI's `pause` reach a relay.
 */
function pickRange(): [number, number] {
  try {
    const low = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0],
    );
    if (low > 12_000) return [10_000, Math.min(low, 32_768) - 1];
  } catch {
    // Not Linux, or no procfs: the range below is the usual one's complement.
  }
  return [20_000, 32_767];
}

function listensOn(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A port nothing listens on (bound once, then released), outside the kernel's own range. */
export async function freePort(): Promise<number> {
  const [low, high] = pickRange();
  for (let tries = 0; tries < 100; tries++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (await listensOn(port)) return port;
  }
  throw new Error(`no free port between ${low} and ${high} after 100 tries`);
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
