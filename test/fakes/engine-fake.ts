/**
 * What the OpenAI-speaking engine fakes share: a key check with public paths, JSON and text
 * answers, and OpenAI chat and text completions from the shared generator, for the models the
 * engine serves (others get 404), with a forced tool call answered as a `tool_calls` message.
 * Each engine's fake adds its own routes and envelopes (built from engines.md).
 */
import type { ServerResponse } from "node:http";
import {
  FakeServer,
  json,
  send,
  type Body,
  type FakeBaseOptions,
  type RecordedRequest,
} from "./fake-server.ts";
export { json } from "./fake-server.ts";
import { generate, plan, WORD_SALAD, type GenerationStyle } from "./generation.ts";

/** Options every engine fake takes. */
export interface EngineFakeOptions extends FakeBaseOptions {
  /** The engine's key; sent as `Authorization: Bearer` (or as the engine also takes it). */
  apiKey?: string;
  /** Reply pieces; default the captured word salad. */
  tokens?: string[];
}

type Json = Record<string, unknown>;

/** One request, split for routing: `GET /v1/models` and the parsed URL. */
export interface Route {
  key: string;
  url: URL;
  req: RecordedRequest;
  body: Body;
}

/** The base of the OpenAI-speaking engine fakes: subclasses add routes and envelopes. */
export abstract class EngineFake extends FakeServer {
  constructor(readonly base: EngineFakeOptions) {
    super(base);
  }

  /** Ids the engine serves now; a completion naming another is refused with 404. */
  protected abstract served(): string[];

  /** Context the generator enforces for `model` (prompt plus reply). */
  protected contextOf(_model: string): number {
    return 4096;
  }

  /** Answers an engine-specific route; resolves false when `route` is not one. */
  protected abstract route(route: Route, res: ServerResponse): boolean | Promise<boolean>;

  /** Paths that need no key; everything needs it by default. */
  protected isPublic(_path: string): boolean {
    return false;
  }

  /** The body of a refusal for a missing or wrong key (vLLM's words by default). */
  protected unauthorized(): unknown {
    return { error: "Unauthorized" };
  }

  /** The engine's error envelope. */
  protected errorBody(status: number, type: string, message: string): unknown {
    return { error: { message, type, param: null, code: status } };
  }

  protected authorised(req: RecordedRequest, path: string): boolean {
    const key = this.base.apiKey;
    return (
      key === undefined || this.isPublic(path) || req.headers.authorization === `Bearer ${key}`
    );
  }

  protected async handle(req: RecordedRequest, body: Body, res: ServerResponse): Promise<void> {
    const url = new URL(req.path, "http://fake");
    if (!this.authorised(req, url.pathname)) return json(res, 401, this.unauthorized());
    const route: Route = { key: `${req.method} ${url.pathname}`, url, req, body };
    if (await this.route(route, res)) return;
    if (route.key === "POST /v1/chat/completions") return this.complete(body, res, "chat");
    if (route.key === "POST /v1/completions") return this.complete(body, res, "text");
    json(res, 404, this.errorBody(404, "NotFoundError", `no route ${route.key}`));
  }

  private async complete(body: Body, res: ServerResponse, kind: "chat" | "text"): Promise<void> {
    if (body.kind !== "json")
      return json(res, 400, this.errorBody(400, "BadRequestError", "invalid JSON body"));
    const request = (body.value ?? {}) as Json;
    const model = typeof request.model === "string" ? request.model : "";
    if (!this.served().includes(model))
      return json(res, 404, this.errorBody(404, "NotFoundError", `model ${model} not found`));
    const style: GenerationStyle = {
      model,
      tokens: this.base.tokens ?? WORD_SALAD,
      nCtx: this.contextOf(model),
      timings: false,
    };
    const p = plan(request, style, kind);
    if ("status" in p) return json(res, p.status, this.errorBody(p.status, p.type, p.message));
    const tool = forcedTool(request);
    if (kind === "chat" && tool !== undefined && !p.stream)
      return json(res, 200, toolCall(model, tool));
    await generate(this, style, p, kind, res);
  }
}

/** The function a request forces with `tool_choice: {type: "function", function: {name}}`. */
function forcedTool(request: Json): string | undefined {
  const choice = request.tool_choice as { function?: { name?: unknown } } | undefined;
  const name = choice?.function?.name;
  return Array.isArray(request.tools) && typeof name === "string" ? name : undefined;
}

function toolCall(model: string, name: string): Json {
  const call = { id: "call_0", type: "function", function: { name, arguments: "{}" } };
  return {
    id: "chatcmpl-tool",
    object: "chat.completion",
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [
      {
        index: 0,
        finish_reason: "tool_calls",
        message: { role: "assistant", content: null, tool_calls: [call] },
      },
    ],
    usage: { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 },
  };
}

/** Writes a plain-text (or other typed) answer. */
export function text(res: ServerResponse, status: number, body: string, type = "text/plain"): void {
  send(res, status, body, `${type}; charset=utf-8`);
}

/** Holds a request unanswered until the client gives up (vLLM while it loads its weights). */
export async function hang(res: ServerResponse): Promise<void> {
  if (res.closed) return;
  await new Promise<void>((resolve) => res.once("close", () => resolve()));
}

/** An OpenAI model list entry. */
export function card(id: string, ownedBy: string | undefined, extra: Json = {}): Json {
  const owner = ownedBy === undefined ? {} : { owned_by: ownedBy };
  return { id, object: "model", created: 1_700_000_000, ...owner, ...extra };
}
