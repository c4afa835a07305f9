/**
 * An OpenAI-compatible engine that says nothing at all about a completion (no status, no
 * headers, no body) until the test releases it: an engine reading a very long prompt. Then it
 * answers its tokens, streamed (SSE) when asked, or the error it is given. It serves one model,
 * `slow`.
 * @example
 * const engine = new HeldEngine(["one", " two"]);
 * await engine.start();
 * // … await once(engine, "request"); engine.release();
 * await engine.stop();
 */
import { EventEmitter } from "node:events";
import http from "node:http";
import { closeNow, json, oneModelList, listenLoopback, loopbackUrl } from "./fake-server.ts";

/** An error answer instead of the stream. */
export interface HeldError {
  status: number;
  body: unknown;
}

export class HeldEngine extends EventEmitter<{ request: [] }> {
  /** Completions held now. */
  held = 0;
  /** Completions whose client left before the answer was complete. */
  cut = 0;
  readonly #waiting: ((error?: HeldError) => void)[] = [];
  readonly #server: http.Server;

  constructor(readonly tokens: string[]) {
    super();
    this.#server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => this.#answer(req, Buffer.concat(chunks), res));
    });
  }

  #answer(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): void {
    if (req.url === "/v1/models") {
      oneModelList(res, "slow", "slow-lab");
      return;
    }
    if (req.url !== "/v1/chat/completions") {
      res.writeHead(404).end();
      return;
    }
    const stream = (JSON.parse(body.toString("utf8")) as { stream?: unknown }).stream === true;
    this.held++;
    res.on("close", () => {
      if (!res.writableEnded) this.cut++;
    });
    this.#waiting.push((error) => {
      this.held--;
      if (error) {
        json(res, error.status, error.body);
        return;
      }
      if (!stream) {
        const message = { role: "assistant", content: this.tokens.join("") };
        const choice = { index: 0, message, finish_reason: "stop" };
        json(res, 200, { object: "chat.completion", model: "slow", choices: [choice] });
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream" });
      for (const content of this.tokens) {
        const delta = { index: 0, delta: { content }, finish_reason: null };
        const chunk = { object: "chat.completion.chunk", model: "slow", choices: [delta] };
        res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      }
      res.end("data: [DONE]\n\n");
    });
    this.emit("request");
  }

  get url(): string {
    return loopbackUrl(this.#server);
  }

  /** Answers every held completion: its tokens, or `error`. */
  release(error?: HeldError): void {
    for (const answer of this.#waiting.splice(0)) answer(error);
  }

  start(): Promise<string> {
    return listenLoopback(this.#server);
  }

  stop(): Promise<void> {
    return closeNow(this.#server);
  }
}
