/**
 * Keeping a consumer's streamed answer alive while the provider has said nothing yet (a long
 * prompt being read): after `ms` of silence the relay commits `200 text/event-stream` and sends
 * an SSE comment every `ms`, which clients skip. Without it, clients and proxies that give up on
 * a silent response cut the generation: Node's `fetch` (the `openai` package's default) waits
 * 300 s for headers, and proxies often 60 s for any byte.
 */
import { envelope, HEADER_REQUEST_ID, type ErrorEnvelope } from "../protocol/index.ts";
import type { ForwardSink } from "./forward.ts";

/** Endpoints whose `"stream": true` answer is SSE. */
export const SSE_ENDPOINTS: ReadonlySet<string> = new Set([
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/responses",
  "/v1/messages",
]);

/** The SSE event that ends a stream with an error; OpenAI clients throw it as an API error. */
export function errorEvent(error: ErrorEnvelope): string {
  return `data: ${JSON.stringify(error)}\n\n`;
}

export class KeepAlive {
  /** True once the consumer has the 200 headers: the provider's status can no longer be sent. */
  committed = false;
  readonly #timer: NodeJS.Timeout;

  constructor(res: ForwardSink, requestId: string, ms: number) {
    this.#timer = setInterval(() => {
      if (res.writableEnded) return this.stop();
      if (!this.committed) {
        this.committed = true;
        res.writeHead(200, {
          "content-type": "text/event-stream",
          "cache-control": "no-cache",
          [HEADER_REQUEST_ID]: requestId,
        });
      }
      res.write(": keep-alive\n\n");
    }, ms);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}

/**
 * What a committed stream ends with when the provider answered something other than a stream:
 * its error envelope when it sent one, else an `upstream_error` naming the status.
 */
export function refusalEvent(provider: string, status: number, body: Buffer): string {
  try {
    const parsed = JSON.parse(body.toString("utf8")) as { error?: { message?: unknown } };
    if (typeof parsed.error?.message === "string") return errorEvent(parsed as ErrorEnvelope);
  } catch {
    // not JSON: name the status instead
  }
  return errorEvent(
    envelope("upstream_error", `provider ${provider} answered ${status} instead of a stream`),
  );
}
