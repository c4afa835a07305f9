/**
 * Reading an engine's chat-completion SSE stream and writing events in another API's shape: the
 * pieces both translators (`responses.ts`, `messages.ts`) share.
 */
import type { Readable } from "node:stream";

/** One chat-completion stream chunk, as far as the translators read it. */
export interface ChatChunk {
  id?: string;
  choices?: {
    delta?: {
      content?: string | null;
      tool_calls?: {
        index?: number;
        id?: string;
        function?: { name?: string; arguments?: string };
      }[];
    };
    finish_reason?: string | null;
  }[];
  usage?: ChatUsage | null;
  error?: unknown;
}

/** A chat completion's `usage`. */
export interface ChatUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
}

/**
 * The JSON payloads of an SSE stream's `data:` lines, in order; comments (llama-server's pings,
 * the relay's keep-alives) and `[DONE]` are skipped, as is a payload that is not JSON.
 */
export async function* sseData(body: Readable): AsyncGenerator {
  let buffered = "";
  // Streaming decode: a character split between two chunks is joined, not turned into U+FFFD.
  const decoder = new TextDecoder();
  for await (const chunk of body) {
    buffered += decoder.decode(chunk as Buffer, { stream: true });
    let cut: number;
    while ((cut = buffered.indexOf("\n")) !== -1) {
      const line = buffered.slice(0, cut).replace(/\r$/, "");
      buffered = buffered.slice(cut + 1);
      if (!line.startsWith("data:")) continue;
      const data = line.slice(5).trim();
      if (data === "" || data === "[DONE]") continue;
      try {
        yield JSON.parse(data) as unknown;
      } catch {
        // a torn or foreign line: nothing a translator could use
      }
    }
  }
}

/** What a chat stream said of its end, gathered as it passes: its usage and finish reason. */
export interface ChatStreamEnd {
  usage?: ChatUsage;
  reason?: string;
}

/** The piece of one chunk's first choice that a translator writes out. */
export type ChatDelta = NonNullable<NonNullable<ChatChunk["choices"]>[number]["delta"]>;

/**
 * The delta of each chunk's first choice, in order (chunks without a choice yield nothing);
 * `end` is filled with the stream's usage and finish reason as they pass: read it after the loop.
 */
export async function* chatDeltas(
  chunks: AsyncIterable<unknown>,
  end: ChatStreamEnd,
): AsyncGenerator<ChatDelta> {
  for await (const raw of chunks) {
    const chunk = raw as ChatChunk;
    if (chunk.usage) end.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    yield choice.delta ?? {};
    if (choice.finish_reason) end.reason = choice.finish_reason;
  }
}

/** One SSE event with a name, as both Responses and Messages streams carry them. */
export function sseEvent(type: string, data: Record<string, unknown>): string {
  return `event: ${type}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** A short random id with a prefix, in the shape each API uses (`resp_…`, `msg_…`). */
export function newId(prefix: string): string {
  return `${prefix}${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
}

/** Reads a whole body as text. The engine is the rig's own and bounds a reply by its context. */
export async function readText(body: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** A function tool in chat's shape, from the name and description Responses and Messages give. */
export function chatFunction(tool: Record<string, unknown>, parameters: unknown): unknown {
  return {
    type: "function",
    function: {
      name: tool.name,
      ...(tool.description === undefined ? {} : { description: tool.description }),
      parameters: parameters ?? { type: "object", properties: {} },
    },
  };
}
