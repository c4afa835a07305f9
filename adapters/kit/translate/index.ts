/**
 * Serving the APIs an engine may not speak: `/v1/responses` and `/v1/messages` go to the engine
 * as they are when its adapter lists them in `nativeEndpoints`, and are translated to and from
 * chat completions otherwise, or when the engine answers 404 there (a build from before it
 * learnt them). `/v1/messages/count_tokens` is only ever the engine's own.
 */
import { Readable } from "node:stream";
import { findEndpoint } from "../../../src/protocol/index.ts";
import type { Adapter, EngineCall, EngineReply } from "../../adapter.ts";
import { chatStreamToMessages, chatToMessage, messagesToChat } from "./messages.ts";
import {
  chatStreamToResponses,
  chatToResponse,
  responsesToChat,
  statefulReason,
} from "./responses.ts";
import { readText, sseData } from "./sse.ts";

export { statefulReason };

type Json = Record<string, unknown>;

/** An answer made here rather than by the engine. */
function reply(status: number, body: unknown, type = "application/json"): EngineReply {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return {
    status,
    headers: { "content-type": type, "content-length": String(Buffer.byteLength(text)) },
    body: Readable.from([Buffer.from(text)]),
  };
}

function clubError(status: number, type: string, message: string): EngineReply {
  return reply(status, { error: { message, type } });
}

interface Translator {
  toChat(body: Json): Json;
  whole(chat: Json, request: Json): Json;
  stream(chunks: AsyncIterable<unknown>, request: Json): AsyncGenerator<string>;
}

const TRANSLATORS: Record<string, Translator> = {
  "/v1/responses": {
    toChat: responsesToChat,
    whole: chatToResponse,
    stream: chatStreamToResponses,
  },
  "/v1/messages": { toChat: messagesToChat, whole: chatToMessage, stream: chatStreamToMessages },
};

const CHAT = findEndpoint("POST", "/v1/chat/completions");

async function translated(
  adapter: Adapter,
  call: EngineCall,
  json: Json,
  t: Translator,
): Promise<EngineReply> {
  if (!CHAT) throw new Error("the endpoint table has no chat completions");
  const chat = t.toChat(json);
  const answer = await adapter.execute({
    ...call,
    endpoint: CHAT,
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json" },
    json: chat,
  });
  // Errors keep the engine's words; the gateway and relay give them the caller's shape.
  if (answer.status >= 300) return answer;
  if (chat.stream === true) {
    const events = t.stream(sseData(answer.body), json);
    return {
      status: answer.status,
      headers: { "content-type": "text/event-stream", "cache-control": "no-cache" },
      // A byte stream, as every reply body is: the gateway counts and keeps Buffers.
      body: Readable.from(events, { objectMode: false }),
    };
  }
  let parsed: Json;
  try {
    parsed = JSON.parse(await readText(answer.body)) as Json;
  } catch {
    return clubError(
      502,
      "upstream_error",
      `${adapter.displayName} sent a chat answer that is not JSON`,
    );
  }
  return reply(answer.status, t.whole(parsed, json));
}

/**
 * The chat-completions request a JSON body stands for, for checks written against chat bodies
 * (the gateway's image-URL check): the body itself on chat, its translation on Responses and
 * Messages (whether the engine gets that translation or the original), undefined elsewhere.
 */
export function chatView(path: string, json: Json): Json | undefined {
  if (path === "/v1/chat/completions") return json;
  return TRANSLATORS[path]?.toChat(json);
}

/**
 * Executes one call on `adapter`, translating Responses and Messages calls to chat completions
 * for engines that do not serve them. Everything else goes to the engine unchanged.
 * @example const reply = await execute(service.adapter, call);
 */
export async function execute(adapter: Adapter, call: EngineCall): Promise<EngineReply> {
  const path = call.endpoint.path;
  const json = call.json;
  if (path === "/v1/responses" && json) {
    const stateful = statefulReason(json);
    if (stateful) return clubError(400, "invalid_request_error", stateful);
  }
  const native = adapter.nativeEndpoints?.includes(path) ?? false;
  const t = TRANSLATORS[path];
  if (path === "/v1/messages/count_tokens" && !native)
    return clubError(404, "not_found_error", `${adapter.displayName} does not count tokens`);
  if (!t || !json) return adapter.execute(call);
  if (!native) return translated(adapter, call, json, t);
  const answer = await adapter.execute(call);
  if (answer.status !== 404) return answer;
  answer.body.resume();
  return translated(adapter, call, json, t);
}
