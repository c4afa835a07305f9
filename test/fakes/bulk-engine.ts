/**
 * An OpenAI-compatible engine whose chat completion is one large binary body (random bytes),
 * produced only as fast as the client takes it: what a slow consumer of a big answer (a video,
 * a long audio file) looks like to the daemon. It serves one model, `bulk`.
 * @example
 * const bulk = new BulkEngine(100 * 1024 * 1024);
 * await bulk.start();
 * // … bulk.produced, bulk.digest() once the body is sent
 * await bulk.stop();
 */
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import { closeNow, oneModelList, listenLoopback, loopbackUrl } from "./fake-server.ts";

const CHUNK = 64 * 1024;

export class BulkEngine {
  /** Bytes written to the client so far. */
  produced = 0;
  readonly #hash = createHash("sha256");
  #digest: string | undefined;
  readonly #server: http.Server;

  constructor(readonly total: number) {
    this.#server = http.createServer((req, res) => {
      req.resume();
      if (req.url === "/v1/models") {
        oneModelList(res, "bulk", "bulk-lab");
        return;
      }
      if (req.url !== "/v1/chat/completions") {
        // Probes of other engines' paths get nothing: only the request under test counts.
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/octet-stream" });
      const pump = (): void => {
        while (this.produced < this.total) {
          const chunk = randomBytes(Math.min(CHUNK, this.total - this.produced));
          this.#hash.update(chunk);
          this.produced += chunk.length;
          if (!res.write(chunk)) return void res.once("drain", pump);
        }
        this.#digest = this.#hash.digest("hex");
        res.end();
      };
      pump();
    });
  }

  get url(): string {
    return loopbackUrl(this.#server);
  }

  /** SHA-256 (hex) of the whole body, once it is produced. */
  digest(): string | undefined {
    return this.#digest;
  }

  start(): Promise<string> {
    return listenLoopback(this.#server);
  }

  stop(): Promise<void> {
    return closeNow(this.#server);
  }
}
