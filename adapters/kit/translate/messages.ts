/**
 * Anthropic's Messages API over an engine that only speaks chat completions: the request becomes
 * a chat request (system, text and image blocks, `tool_use` and `tool_result`), the answer a
 * Message, or, streamed, Anthropic's events: `message_start`, `content_block_start`,
 * `content_block_delta` (`text_delta`, `input_json_delta`), `content_block_stop`,
 * `message_delta`, `message_stop`.
 */
import type { Readable } from "node:stream";
import {
  chatDeltas,
  chatFunction,
  newId,
  sseData,
  sseEvent,
  type ChatStreamEnd,
  type ChatUsage,
} from "./sse.ts";

type Json = Record<string, unknown>;

function blocks(content: unknown): Json[] {
  if (typeof content === "string") return [{ type: "text", text: content }];
  return Array.isArray(content) ? (content as Json[]) : [];
}

function textOf(content: unknown): string {
  return blocks(content)
    .map((b) => (b.type === "text" && typeof b.text === "string" ? b.text : ""))
    .join("");
}

function imageUrl(block: Json): string {
  const source = (block.source as Json | undefined) ?? {};
  if (source.type === "base64")
    return `data:${String(source.media_type)};base64,${String(source.data)}`;
  return typeof source.url === "string" ? source.url : "";
}

/** One Anthropic message as the chat messages it stands for. */
function chatMessagesOf(message: Json): Json[] {
  const role = message.role === "assistant" ? "assistant" : "user";
  const list = blocks(message.content);
  if (role === "assistant") {
    const calls = list
      .filter((b) => b.type === "tool_use")
      .map((b) => ({
        id: b.id,
        type: "function",
        function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) },
      }));
    const text = textOf(list);
    return [
      {
        role,
        content: text === "" && calls.length > 0 ? null : text,
        ...(calls.length ? { tool_calls: calls } : {}),
      },
    ];
  }
  const out: Json[] = [];
  for (const b of list.filter((x) => x.type === "tool_result")) {
    const content = typeof b.content === "string" ? b.content : textOf(b.content);
    out.push({ role: "tool", tool_call_id: b.tool_use_id, content });
  }
  const parts = list
    .filter((b) => b.type === "text" || b.type === "image")
    .map((b) =>
      b.type === "image"
        ? { type: "image_url", image_url: { url: imageUrl(b) } }
        : { type: "text", text: b.text },
    );
  if (parts.length > 0)
    out.push({
      role,
      content: parts.every((p) => p.type === "text") ? parts.map((p) => p.text).join("") : parts,
    });
  return out;
}

function chatToolChoice(choice: Json | undefined): unknown {
  if (choice?.type === "any") return "required";
  if (choice?.type === "tool") return { type: "function", function: { name: choice.name } };
  if (choice?.type === "none" || choice?.type === "auto") return choice.type;
  return undefined;
}

/** A Messages request as the chat-completions request that serves it. */
export function messagesToChat(body: Json): Json {
  const messages: Json[] = [];
  const system = typeof body.system === "string" ? body.system : textOf(body.system);
  if (system !== "") messages.push({ role: "system", content: system });
  for (const m of Array.isArray(body.messages) ? body.messages : [])
    messages.push(...chatMessagesOf(m as Json));
  const chat: Json = { model: body.model, messages };
  if (body.max_tokens !== undefined) chat.max_tokens = body.max_tokens;
  for (const key of ["temperature", "top_p", "top_k", "seed"])
    if (body[key] !== undefined) chat[key] = body[key];
  if (Array.isArray(body.stop_sequences)) chat.stop = body.stop_sequences;
  const tools = Array.isArray(body.tools) ? (body.tools as Json[]) : [];
  if (tools.length > 0) chat.tools = tools.map((t) => chatFunction(t, t.input_schema));
  const choice = chatToolChoice(body.tool_choice as Json | undefined);
  if (choice !== undefined) chat.tool_choice = choice;
  if (body.stream === true) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  return chat;
}

const STOP: Record<string, string> = {
  stop: "end_turn",
  length: "max_tokens",
  tool_calls: "tool_use",
  function_call: "tool_use",
};

function stopReason(reason: string | null | undefined): string {
  return (reason && STOP[reason]) ?? "end_turn";
}

function parseInput(args: string | undefined): unknown {
  try {
    return JSON.parse(args ?? "{}") as unknown;
  } catch {
    return {};
  }
}

/** A whole chat completion as a Message. */
export function chatToMessage(chat: Json, request: Json): Json {
  const choice = (chat.choices as Json[] | undefined)?.[0] ?? {};
  const message = (choice.message as Json | undefined) ?? {};
  const content: Json[] = [];
  if (typeof message.content === "string" && message.content !== "")
    content.push({ type: "text", text: message.content });
  for (const raw of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
    const c = raw as { id?: string; function?: { name?: string; arguments?: string } };
    content.push({
      type: "tool_use",
      id: c.id ?? newId("toolu_"),
      name: c.function?.name ?? "",
      input: parseInput(c.function?.arguments),
    });
  }
  const usage = (chat.usage as ChatUsage | undefined) ?? {};
  return {
    id: newId("msg_"),
    type: "message",
    role: "assistant",
    model: chat.model ?? request.model,
    content,
    stop_reason: stopReason(choice.finish_reason as string | undefined),
    stop_sequence: null,
    usage: { input_tokens: usage.prompt_tokens ?? 0, output_tokens: usage.completion_tokens ?? 0 },
  };
}

/** A chat-completion SSE stream as Anthropic's message events. */
export async function* chatStreamToMessages(
  chunks: AsyncIterable<unknown>,
  request: Json,
): AsyncGenerator<string> {
  const ev = (type: string, data: Json) => sseEvent(type, { type, ...data });
  const message = {
    id: newId("msg_"),
    type: "message",
    role: "assistant",
    model: request.model,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage: { input_tokens: 0, output_tokens: 0 },
  };
  yield ev("message_start", { message });
  let index = -1;
  let open: "text" | number | undefined;
  const end: ChatStreamEnd = {};
  const close = function* () {
    if (open === undefined) return;
    open = undefined;
    yield ev("content_block_stop", { index });
  };
  for await (const delta of chatDeltas(chunks, end)) {
    if (typeof delta.content === "string" && delta.content !== "") {
      if (open !== "text") {
        yield* close();
        open = "text";
        index++;
        yield ev("content_block_start", { index, content_block: { type: "text", text: "" } });
      }
      yield ev("content_block_delta", {
        index,
        delta: { type: "text_delta", text: delta.content },
      });
    }
    for (const tc of delta.tool_calls ?? []) {
      const key = tc.index ?? 0;
      if (open !== key) {
        yield* close();
        open = key;
        index++;
        const block = {
          type: "tool_use",
          id: tc.id ?? newId("toolu_"),
          name: tc.function?.name ?? "",
          input: {},
        };
        yield ev("content_block_start", { index, content_block: block });
      }
      const args = tc.function?.arguments ?? "";
      if (args !== "")
        yield ev("content_block_delta", {
          index,
          delta: { type: "input_json_delta", partial_json: args },
        });
    }
  }
  yield* close();
  yield ev("message_delta", {
    delta: { stop_reason: stopReason(end.reason), stop_sequence: null },
    usage: {
      input_tokens: end.usage?.prompt_tokens ?? 0,
      output_tokens: end.usage?.completion_tokens ?? 0,
    },
  });
  yield ev("message_stop", {});
}

/** The Messages event stream of an engine's chat SSE body. */
export function messagesStream(body: Readable, request: Json): AsyncGenerator<string> {
  return chatStreamToMessages(sseData(body), request);
}
