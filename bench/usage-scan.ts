/**
 * What the relay's usage metering costs per answer (`src/relay/usage-scan.ts`,
 * `src/relay/usage-sse.ts`), in-process: MiB/s of the JSON scan over an image answer (two base64
 * images) and an embeddings answer, and µs per event of a chat stream and per small answer.
 * Usage: node --import tsx bench/usage-scan.ts   (`BENCH_ROUNDS`, default 5; prints medians)
 */
import { SMALL_ANSWER, median } from "./common.ts";
import { JsonScanner } from "../src/relay/usage-scan.ts";
import { SseUsage } from "../src/relay/usage-sse.ts";

const CHUNK = 64 * 1024;

const image = Buffer.from(
  JSON.stringify({
    created: 1,
    data: [1, 2].map(() => ({ b64_json: Buffer.alloc(3 * 1024 * 1024, 7).toString("base64") })),
    usage: { total_tokens: 5 },
  }),
);
const embeddings = Buffer.from(
  JSON.stringify({
    object: "list",
    data: Array.from({ length: 64 }, (_, index) => ({
      object: "embedding",
      index,
      embedding: Array.from({ length: 1024 }, (_, i) => Math.sin(index * 1024 + i)),
    })),
    usage: { prompt_tokens: 9, total_tokens: 9 },
  }),
);
const small = Buffer.from(SMALL_ANSWER);
const event = (v: unknown): Buffer => Buffer.from(`data: ${JSON.stringify(v)}\n\n`);
const events = Array.from({ length: 2000 }, (_, i) =>
  event({
    id: "chatcmpl-bench",
    object: "chat.completion.chunk",
    created: 1,
    model: "bench-model",
    choices: [{ index: 0, delta: { content: `token ${i}` }, finish_reason: null }],
  }),
);
events.push(event({ choices: [], usage: { prompt_tokens: 5, completion_tokens: 2000 } }));

/** MiB/s of one scan of `body`, fed in 64 KiB chunks as a socket gives it. */
function scanRate(body: Buffer): number {
  const start = performance.now();
  const scan = new JsonScanner();
  for (let at = 0; at < body.length; at += CHUNK) scan.feed(body.subarray(at, at + CHUNK));
  if (!scan.result().usage) throw new Error("the scan found no usage");
  return body.length / 1048576 / ((performance.now() - start) / 1000);
}

/** µs per call of `work`, over `times` calls. */
function micros(times: number, work: () => void): number {
  const start = performance.now();
  for (let i = 0; i < times; i++) work();
  return ((performance.now() - start) * 1000) / times;
}

const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const runs = {
  image: [] as number[],
  embeddings: [] as number[],
  sse: [] as number[],
  small: [] as number[],
};
for (let round = 0; round < rounds; round++) {
  runs.image.push(scanRate(image));
  runs.embeddings.push(scanRate(embeddings));
  runs.sse.push(
    micros(10, () => {
      const sse = new SseUsage({ strip: false });
      for (const e of events) sse.push(e);
      sse.end();
      if (sse.tokens.completion !== 2000) throw new Error("the stream's usage was not read");
    }) / events.length,
  );
  runs.small.push(
    micros(20_000, () => {
      const scan = new JsonScanner();
      scan.feed(small);
      if (!scan.result().usage) throw new Error("the scan found no usage");
    }),
  );
}
const mib = (n: number): string => (n / 1048576).toFixed(1);
process.stdout.write(
  [
    `medians of ${rounds} rounds`,
    `image answer (${mib(image.length)} MiB): ${median(runs.image).toFixed(0)} MiB/s`,
    `embeddings answer (${mib(embeddings.length)} MiB): ${median(runs.embeddings).toFixed(0)} MiB/s`,
    `chat stream (${events.length} events): ${median(runs.sse).toFixed(2)} µs per event`,
    `small answer (${small.length} bytes): ${median(runs.small).toFixed(2)} µs`,
  ].join("\n") + "\n",
);
