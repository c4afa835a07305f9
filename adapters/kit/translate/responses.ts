/**
 * OpenAI's Responses API over an engine that only speaks chat completions: the request becomes
 * a chat request, the answer (whole or streamed) becomes a Response and its event sequence
 * (`response.created` … `response.completed`, with `function_call` items for tool calls).
 * Stateless: nothing is stored, so `previous_response_id` and `store: true` are refused earlier.
 */
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

/** Why a Responses request cannot be served statelessly, or undefined when it can. */
export function statefulReason(body: Json): string | undefined {
  if (body.previous_response_id !== undefined && body.previous_response_id !== null)
    return "previous_response_id is not supported: the club stores no responses; send the whole conversation in input";
  if (body.store === true)
    return "store: true is not supported: the club stores no responses; send store: false or leave it out";
  return undefined;
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((p) => (typeof (p as Json).text === "string" ? ((p as Json).text as string) : ""))
    .join("");
}

/** A Responses content list as chat content parts (text and images). */
function chatContent(content: unknown): unknown {
  if (!Array.isArray(content)) return typeof content === "string" ? content : "";
  const parts = content.map((raw) => {
    const p = raw as Json;
    if (p.type === "input_image") {
      const url = typeof p.image_url === "string" ? p.image_url : "";
      return { type: "image_url", image_url: { url } };
    }
    return { type: "text", text: typeof p.text === "string" ? p.text : "" };
  });
  return parts.every((p) => p.type === "text") ? parts.map((p) => p.text).join("") : parts;
}

/** The `input` of a Responses request as chat messages (tool calls and results included). */
function chatMessages(body: Json): Json[] {
  const messages: Json[] = [];
  if (typeof body.instructions === "string" && body.instructions !== "")
    messages.push({ role: "system", content: body.instructions });
  if (typeof body.input === "string") {
    messages.push({ role: "user", content: body.input });
    return messages;
  }
  for (const raw of Array.isArray(body.input) ? body.input : []) {
    const item = raw as Json;
    if (item.type === "function_call") {
      const call = {
        id: item.call_id,
        type: "function",
        function: { name: item.name, arguments: item.arguments },
      };
      const last = messages.at(-1);
      if (last?.role === "assistant" && Array.isArray(last.tool_calls))
        (last.tool_calls as unknown[]).push(call);
      else messages.push({ role: "assistant", content: null, tool_calls: [call] });
    } else if (item.type === "function_call_output") {
      const output = typeof item.output === "string" ? item.output : JSON.stringify(item.output);
      messages.push({ role: "tool", tool_call_id: item.call_id, content: output });
    } else if (item.type === "message" || item.type === undefined) {
      const role = item.role === "developer" ? "system" : item.role;
      const content = role === "assistant" ? textOf(item.content) : chatContent(item.content);
      messages.push({ role, content });
    }
  }
  return messages;
}

function chatToolChoice(choice: unknown): unknown {
  if (typeof choice === "string") return choice;
  const c = choice as Json | undefined;
  if (c?.type === "function" && typeof c.name === "string")
    return { type: "function", function: { name: c.name } };
  return undefined;
}

/** A Responses request as the chat-completions request that serves it. */
export function responsesToChat(body: Json): Json {
  const chat: Json = { model: body.model, messages: chatMessages(body) };
  const tools = (Array.isArray(body.tools) ? body.tools : [])
    .map((t) => t as Json)
    .filter((t) => t.type === "function");
  if (tools.length > 0) chat.tools = tools.map((t) => chatFunction(t, t.parameters));
  const choice = chatToolChoice(body.tool_choice);
  if (choice !== undefined) chat.tool_choice = choice;
  if (body.max_output_tokens !== undefined) chat.max_tokens = body.max_output_tokens;
  for (const key of ["temperature", "top_p", "seed", "parallel_tool_calls", "stop"])
    if (body[key] !== undefined) chat[key] = body[key];
  const format = (body.text as Json | undefined)?.format as Json | undefined;
  if (format?.type === "json_schema")
    chat.response_format = {
      type: "json_schema",
      json_schema: { name: format.name, schema: format.schema, strict: format.strict },
    };
  else if (format?.type === "json_object") chat.response_format = { type: "json_object" };
  if (body.stream === true) {
    chat.stream = true;
    chat.stream_options = { include_usage: true };
  }
  return chat;
}

function usageOf(usage: ChatUsage | null | undefined): Json | null {
  if (!usage) return null;
  const input = usage.prompt_tokens ?? 0;
  const output = usage.completion_tokens ?? 0;
  return {
    input_tokens: input,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: output,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.total_tokens ?? input + output,
  };
}

/** The Response shell: everything but `output`, `status` and `usage`. */
function shell(id: string, model: unknown, request: Json): Json {
  return {
    id,
    object: "response",
    created_at: Math.floor(Date.now() / 1000),
    model,
    instructions: request.instructions ?? null,
    max_output_tokens: request.max_output_tokens ?? null,
    parallel_tool_calls: request.parallel_tool_calls ?? true,
    previous_response_id: null,
    store: false,
    temperature: request.temperature ?? null,
    tool_choice: request.tool_choice ?? "auto",
    tools: request.tools ?? [],
    top_p: request.top_p ?? null,
    error: null,
    incomplete_details: null,
    metadata: request.metadata ?? {},
  };
}

function messageItem(id: string, text: string, status: string): Json {
  const content = [{ type: "output_text", text, annotations: [] }];
  return { type: "message", id, status, role: "assistant", content };
}

function callItem(id: string, call: { id: string; name: string; args: string }, status: string) {
  return {
    type: "function_call",
    id,
    call_id: call.id,
    name: call.name,
    arguments: call.args,
    status,
  };
}

function finish(response: Json, reason: string | null | undefined): void {
  if (reason === "length") {
    response.status = "incomplete";
    response.incomplete_details = { reason: "max_output_tokens" };
  } else response.status = "completed";
}

/** A whole chat completion as a Response. */
export function chatToResponse(chat: Json, request: Json): Json {
  const choice = (chat.choices as Json[] | undefined)?.[0] ?? {};
  const message = (choice.message as Json | undefined) ?? {};
  const output: Json[] = [];
  const text = typeof message.content === "string" ? message.content : "";
  if (text !== "") output.push(messageItem(newId("msg_"), text, "completed"));
  for (const raw of Array.isArray(message.tool_calls) ? message.tool_calls : []) {
    const c = raw as { id?: string; function?: { name?: string; arguments?: string } };
    const call = {
      id: c.id ?? newId("call_"),
      name: c.function?.name ?? "",
      args: c.function?.arguments ?? "{}",
    };
    output.push(callItem(newId("fc_"), call, "completed"));
  }
  const response = { ...shell(newId("resp_"), chat.model ?? request.model, request), output };
  finish(response, choice.finish_reason as string | undefined);
  return { ...response, usage: usageOf(chat.usage as ChatUsage | undefined) };
}

/**
 * A chat-completion SSE stream as the Responses event sequence: `response.created`,
 * `response.in_progress`, then per output item `output_item.added`, its deltas and `.done`
 * events, and `response.completed` (or `response.incomplete`) with the whole Response.
 */
export async function* chatStreamToResponses(
  chunks: AsyncIterable<unknown>,
  request: Json,
): AsyncGenerator<string> {
  let seq = 0;
  const ev = (type: string, data: Json) =>
    sseEvent(type, { type, sequence_number: seq++, ...data });
  const response: Json = {
    ...shell(newId("resp_"), request.model, request),
    status: "in_progress",
    output: [],
  };
  const output = response.output as Json[];
  yield ev("response.created", { response: { ...response, output: [] } });
  yield ev("response.in_progress", { response: { ...response, output: [] } });
  let text: { id: string; index: number; text: string } | undefined;
  const calls = new Map<
    number,
    { id: string; index: number; call: { id: string; name: string; args: string } }
  >();
  const end: ChatStreamEnd = {};
  const closeText = function* () {
    if (!text) return;
    const t = text;
    text = undefined;
    const part = { type: "output_text", text: t.text, annotations: [] };
    const at = { item_id: t.id, output_index: t.index, content_index: 0 };
    yield ev("response.output_text.done", { ...at, text: t.text });
    yield ev("response.content_part.done", { ...at, part });
    const item = messageItem(t.id, t.text, "completed");
    output[t.index] = item;
    yield ev("response.output_item.done", { output_index: t.index, item });
  };
  for await (const delta of chatDeltas(chunks, end)) {
    if (typeof delta.content === "string" && delta.content !== "") {
      if (!text) {
        text = { id: newId("msg_"), index: output.length, text: "" };
        output.push(messageItem(text.id, "", "in_progress"));
        const item = { ...messageItem(text.id, "", "in_progress"), content: [] };
        yield ev("response.output_item.added", { output_index: text.index, item });
        const part = { type: "output_text", text: "", annotations: [] };
        yield ev("response.content_part.added", {
          item_id: text.id,
          output_index: text.index,
          content_index: 0,
          part,
        });
      }
      text.text += delta.content;
      yield ev("response.output_text.delta", {
        item_id: text.id,
        output_index: text.index,
        content_index: 0,
        delta: delta.content,
      });
    }
    for (const tc of delta.tool_calls ?? []) {
      const key = tc.index ?? 0;
      let open = calls.get(key);
      if (!open) {
        yield* closeText();
        const call = { id: tc.id ?? newId("call_"), name: tc.function?.name ?? "", args: "" };
        open = { id: newId("fc_"), index: output.length, call };
        calls.set(key, open);
        output.push(callItem(open.id, call, "in_progress"));
        yield ev("response.output_item.added", {
          output_index: open.index,
          item: callItem(open.id, call, "in_progress"),
        });
      }
      const args = tc.function?.arguments ?? "";
      if (args !== "") {
        open.call.args += args;
        yield ev("response.function_call_arguments.delta", {
          item_id: open.id,
          output_index: open.index,
          delta: args,
        });
      }
    }
  }
  yield* closeText();
  for (const open of calls.values()) {
    yield ev("response.function_call_arguments.done", {
      item_id: open.id,
      output_index: open.index,
      arguments: open.call.args,
    });
    const item = callItem(open.id, open.call, "completed");
    output[open.index] = item;
    yield ev("response.output_item.done", { output_index: open.index, item });
  }
  finish(response, end.reason);
  response.usage = usageOf(end.usage);
  yield ev(response.status === "incomplete" ? "response.incomplete" : "response.completed", {
    response,
  });
}

/** The Responses event stream of an engine's chat SSE body. */
export function responsesStream(
  body: import("node:stream").Readable,
  request: Json,
): AsyncGenerator<string> {
  return chatStreamToResponses(sseData(body), request);
}
