/**
 * The fake upstream of the benchmarks, in its own process: an OpenAI-style server that answers
 * as fast as Node can. `POST /v1/chat/completions` takes a `bench` field in the body:
 * - none: a small chat completion (about 300 bytes);
 * - `stream: true` with `bench.chunks`, `bench.interval_ms`: a paced SSE stream whose events
 *   carry the wall-clock time they were written (`t`, ms), for per-chunk delay;
 * - `bench.bytes`: a body of that many bytes (bulk throughput, slow consumers).
 * Usage: node --import tsx bench/upstream.ts   (prints `listening <port>`)
 */
import http from "node:http";
import { once } from "node:events";
import { MODEL, SMALL_ANSWER, wallMs } from "./common.ts";

interface BenchBody {
  stream?: boolean;
  bench?: { chunks?: number; interval_ms?: number; bytes?: number };
}

const BLOCK = Buffer.alloc(64 * 1024, 97);

async function bulk(res: http.ServerResponse, bytes: number): Promise<void> {
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": bytes });
  let left = bytes;
  while (left > 0 && !res.destroyed) {
    const n = Math.min(left, BLOCK.length);
    left -= n;
    if (!res.write(n === BLOCK.length ? BLOCK : BLOCK.subarray(0, n)))
      await Promise.race([once(res, "drain"), once(res, "close")]);
  }
  res.end();
}

async function paced(res: http.ServerResponse, chunks: number, intervalMs: number): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  for (let i = 0; i < chunks && !res.destroyed; i++) {
    if (i > 0 && intervalMs > 0) await new Promise((r) => setTimeout(r, intervalMs));
    const delta = { content: "tok" };
    res.write(
      `data: {"t":${wallMs()},"i":${i},"choices":[{"index":0,"delta":${JSON.stringify(delta)}}]}\n\n`,
    );
  }
  res.end("data: [DONE]\n\n");
}

const server = http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
  if (req.method === "GET" && req.url === "/v1/models") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({ object: "list", data: [{ id: MODEL, object: "model", owned_by: "bench" }] }),
    );
    return;
  }
  const parts: Buffer[] = [];
  req.on("data", (c: Buffer) => parts.push(c));
  req.on("end", () => {
    let body: BenchBody = {};
    try {
      body = JSON.parse(Buffer.concat(parts).toString("utf8")) as BenchBody;
    } catch {
      // an empty or odd body gets the small answer
    }
    const b = body.bench ?? {};
    if (b.bytes) void bulk(res, b.bytes);
    else if (body.stream) void paced(res, b.chunks ?? 1, b.interval_ms ?? 0);
    else
      res
        .writeHead(200, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(SMALL_ANSWER),
        })
        .end(SMALL_ANSWER);
  });
});
server.headersTimeout = 0;
server.requestTimeout = 0;
server.listen(0, "127.0.0.1", () => {
  const { port } = server.address() as { port: number };
  process.stdout.write(`listening ${port}\n`);
});
