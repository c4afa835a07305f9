/**
 * OpenAI chat and text completions for the fakes, in the shapes llama-server was recorded
 * answering (llama-server-captures.md): deterministic word-salad tokens, `length` when
 * `max_tokens` or the slot context cuts the reply, SSE ending in `data: [DONE]`.
 */
import type { ServerResponse } from "node:http";
import { json, type FakeServer } from "./fake-server.ts";

/** The pieces of the captured reply " Cas Axios fest Ston participFormsjejer WritingbindworkingornaBootTesttom". */
export const WORD_SALAD = [
  " Cas",
  " Axios",
  " fest",
  " Ston",
  " particip",
  "Forms",
  "jejer",
  " Writing",
  "bind",
  "working",
  "orna",
  "Boot",
  "Test",
  "tom",
];

/** How one fake engine words its replies. */
export interface GenerationStyle {
  /** The id echoed as `model` (llama-server echoes its own id, not the request's). */
  model: string;
  tokens: readonly string[];
  /** Per-slot context: prompt plus reply never exceed it. */
  nCtx: number;
  /** `system_fingerprint`; omitted when undefined. */
  fingerprint?: string | undefined;
  /** Add llama.cpp's `timings` objects. */
  timings: boolean;
  /** Send `: ping` SSE comments this often while streaming. */
  pingEveryMs?: number | undefined;
}

/** What to answer: the reply's pieces and why it ends. */
export interface Plan {
  pieces: string[];
  finish: "stop" | "length";
  promptTokens: number;
  stream: boolean;
  includeUsage: boolean;
}

/** A refusal, for the fake to word in its own error envelope. */
export interface PlanError {
  status: number;
  type: string;
  message: string;
  extra?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function words(text: unknown): number {
  if (typeof text === "string") return text.split(/\s+/).filter(Boolean).length;
  if (Array.isArray(text))
    return text.reduce((n: number, part) => n + words((part as Json).text), 0);
  return 0;
}

/** Plans a reply; `promptTokens` is a rough count (template overhead plus words). */
export function plan(body: Json, style: GenerationStyle, kind: "chat" | "text"): Plan | PlanError {
  let promptTokens: number;
  if (kind === "chat") {
    if (!Array.isArray(body.messages))
      return { status: 400, type: "invalid_request_error", message: "'messages' is required" };
    promptTokens =
      20 + body.messages.reduce((n: number, m) => n + 5 + words((m as Json).content), 0);
  } else {
    if (typeof body.prompt !== "string")
      return { status: 400, type: "invalid_request_error", message: "'prompt' is required" };
    promptTokens = Math.max(1, words(body.prompt));
  }
  if (promptTokens > style.nCtx)
    return {
      status: 400,
      type: "exceed_context_size_error",
      message: `request (${promptTokens} tokens) exceeds the available context size (${style.nCtx} tokens), try increasing it`,
      extra: { n_prompt_tokens: promptTokens, n_ctx: style.nCtx },
    };
  const max = [body.max_tokens, body.max_completion_tokens, body.n_predict].find(
    (v): v is number => typeof v === "number" && v >= 0,
  );
  const limit = Math.min(max ?? Infinity, style.nCtx - promptTokens);
  const pieces = style.tokens.slice(0, limit);
  return {
    pieces,
    finish: pieces.length < style.tokens.length ? "length" : "stop",
    promptTokens,
    stream: body.stream === true,
    includeUsage: (body.stream_options as Json | undefined)?.include_usage === true,
  };
}

let counter = 0;
function nextId(): string {
  counter++;
  return `chatcmpl-${String(counter).padStart(32, "0")}`;
}

function usage(p: Plan): Json {
  const n = p.pieces.length;
  return {
    completion_tokens: n,
    prompt_tokens: p.promptTokens,
    total_tokens: n + p.promptTokens,
    prompt_tokens_details: { cached_tokens: 0 },
  };
}

function timings(p: Plan): Json {
  const n = p.pieces.length;
  return {
    cache_n: 0,
    prompt_n: p.promptTokens,
    prompt_ms: 2.5,
    prompt_per_token_ms: 2.5 / p.promptTokens,
    prompt_per_second: 400 * p.promptTokens,
    predicted_n: n,
    predicted_ms: 2 * n,
    predicted_per_token_ms: 2,
    predicted_per_second: 500,
  };
}

function sendJson(res: ServerResponse, body: Json): void {
  json(res, 200, body, {}, "application/json; charset=utf-8");
}

/**
 * Generates one reply on `fake`, token by token (honouring its gate and delay), and writes it
 * as a chat or text completion, streamed or not. Stops quietly when the client goes away.
 */
export async function generate(
  fake: FakeServer,
  style: GenerationStyle,
  p: Plan,
  kind: "chat" | "text",
  res: ServerResponse,
): Promise<void> {
  const gen = fake.track(res);
  const id = nextId();
  const created = Math.floor(Date.now() / 1000);
  const fp = style.fingerprint === undefined ? {} : { system_fingerprint: style.fingerprint };
  const object = kind === "chat" ? "chat.completion" : "text_completion";
  const tail = (extra: Json): Json => (style.timings ? { ...extra, timings: timings(p) } : extra);
  const chatChoice = (delta: Json, finish: string | null): Json => ({
    finish_reason: finish,
    index: 0,
    delta,
  });
  const textChoice = (text: string, finish: string | null): Json => ({
    text,
    index: 0,
    logprobs: null,
    finish_reason: finish,
  });

  if (!p.stream) {
    for (let i = 0; i < p.pieces.length; i++) {
      await fake.beforeToken();
      if (gen.closed()) return;
    }
    const text = p.pieces.join("");
    const choice =
      kind === "chat"
        ? { finish_reason: p.finish, index: 0, message: { role: "assistant", content: text } }
        : textChoice(text, p.finish);
    gen.complete();
    sendJson(
      res,
      tail({ choices: [choice], created, model: style.model, ...fp, object, usage: usage(p), id }),
    );
    return;
  }

  res.writeHead(200, { "X-Accel-Buffering": "no", "Content-Type": "text/event-stream" });
  const send = (event: Json): boolean => res.write(`data: ${JSON.stringify(event)}\n\n`);
  const chunk = (choices: Json[]): Json =>
    kind === "chat"
      ? { choices, created, id, model: style.model, ...fp, object: "chat.completion.chunk" }
      : { choices, created, model: style.model, ...fp, object, id };
  const ping =
    style.pingEveryMs === undefined
      ? undefined
      : setInterval(() => res.write(": ping\n\n"), style.pingEveryMs);
  // Stops pinging when the response ends or the client goes away, whichever comes first.
  res.on("close", () => clearInterval(ping));
  if (kind === "chat") send(chunk([chatChoice({ role: "assistant", content: null }, null)]));
  for (const piece of p.pieces) {
    await fake.beforeToken();
    if (gen.closed()) return;
    send(chunk([kind === "chat" ? chatChoice({ content: piece }, null) : textChoice(piece, null)]));
  }
  const last = kind === "chat" ? chatChoice({}, p.finish) : textChoice("", p.finish);
  if (kind === "chat" && p.includeUsage) {
    send(chunk([last]));
    send(tail({ ...chunk([]), usage: usage(p) }));
  } else if (kind === "chat") {
    send(tail(chunk([last])));
  } else {
    send(
      tail({ choices: [last], created, model: style.model, ...fp, object, usage: usage(p), id }),
    );
  }
  res.end("data: [DONE]\n\n");
  gen.complete();
}
