/**
 * Reading usage from answers as they pass (`usage-scan.ts`, `usage-sse.ts`): JSON of any size
 * cut at any byte, the usage of Responses and Anthropic Messages streams, and the usage-only
 * chunk taken out of a stream, the rest given on byte for byte.
 */
import { describe, expect, it } from "vitest";
import { JsonScanner } from "../../src/relay/usage-scan.ts";
import { MAX_HELD, SseUsage } from "../../src/relay/usage-sse.ts";

/** `text` cut into pieces at every `step` bytes. */
const pieces = (text: string | Buffer, step: number): Buffer[] => {
  const buf = Buffer.isBuffer(text) ? text : Buffer.from(text);
  const out: Buffer[] = [];
  for (let i = 0; i < buf.length; i += step) out.push(buf.subarray(i, i + step));
  return out;
};

const scan = (text: string | Buffer, step: number) => {
  const s = new JsonScanner();
  for (const p of pieces(text, step)) s.feed(p);
  return s.result();
};

const sse = (text: string, step: number, strip: boolean) => {
  const s = new SseUsage({ strip });
  const out = pieces(text, step).map((p) => s.push(p));
  out.push(s.end());
  return { out: Buffer.concat(out).toString(), tokens: s.tokens };
};

describe("the JSON scanner", () => {
  const answer = JSON.stringify({
    id: "x",
    choices: [{ message: { content: 'a "usage":{"prompt_tokens":999} in a string \\ and {[' } }],
    usage: {
      prompt_tokens: 19,
      completion_tokens: 25,
      prompt_tokens_details: { cached_tokens: 0 },
    },
    timings: { prompt_n: 19 },
  });

  it("finds the usage however the answer is cut, not the one inside a string", () => {
    for (let step = 1; step <= answer.length; step++)
      expect(scan(answer, step).usage, String(step)).toEqual({
        prompt_tokens: 19,
        completion_tokens: 25,
        prompt_tokens_details: { cached_tokens: 0 },
      });
  });

  it("follows escapes at any cut: a backslash before a quote, a string ending in one", () => {
    const tricky = JSON.stringify({
      id: "ends in a backslash \\",
      choices: [{ message: { content: '\\"quoted\\" \\\\" } "usage":{' } }],
      x: ["\\", '"', "\\\\"],
      usage: { total_tokens: 7 },
    });
    for (let step = 1; step <= tricky.length; step++)
      expect(scan(tricky, step), String(step)).toEqual({ usage: { total_tokens: 7 } });
    expect(scan(Buffer.from(tricky), tricky.length)).toEqual({ usage: { total_tokens: 7 } });
  });

  it("reads past deep values (an embeddings answer) at any cut, counting the items", () => {
    const embeddings = JSON.stringify({
      object: "list",
      data: [
        { object: "embedding", index: 0, embedding: [0.1, -2e-3, 3] },
        { object: "embedding", index: 1, embedding: [[1, 2], [3]], note: { s: "]} x", usage: 1 } },
        { object: "embedding", index: 2, embedding: [] },
      ],
      model: "e",
      usage: { prompt_tokens: 4, total_tokens: 4 },
    });
    for (let step = 1; step <= embeddings.length; step++)
      expect(scan(embeddings, step), String(step)).toEqual({
        dataItems: 3,
        usage: { prompt_tokens: 4, total_tokens: 4 },
      });
  });

  it("counts the items of a big image answer and reads the usage after them", () => {
    const b64 = Buffer.alloc(700 * 1024, 1).toString("base64");
    const big = JSON.stringify({
      created: 1,
      data: [{ b64_json: b64 }, { b64_json: b64, revised_prompt: "]" }, { url: "u" }],
      usage: { input_tokens: 5, output_tokens: 0 },
    });
    expect(big.length).toBeGreaterThan(1024 * 1024);
    expect(scan(big, 64 * 1024)).toEqual({
      dataItems: 3,
      usage: { input_tokens: 5, output_tokens: 0 },
    });
    expect(scan('{"data":[]}', 1)).toEqual({ dataItems: 0 });
  });

  it("reads a transcription's duration and a usage one level down", () => {
    expect(scan('{"text":"hi","duration": 12.5,"language":"en"}', 3)).toEqual({ duration: 12.5 });
    expect(scan('{"type":"message","message":{"usage":{"input_tokens":3}}}', 2).usage).toEqual({
      input_tokens: 3,
    });
    // Deeper than that is not an answer's usage.
    expect(scan('{"a":{"b":{"usage":{"input_tokens":3}}}}', 1).usage).toBeUndefined();
  });

  it("acts on a key only when it is the whole key, however it is cut", () => {
    // Keys that begin as one of its keys, or that one of them begins with, or differ at the end.
    const near =
      '{"use":{"a":1},"usages":{"a":2},"dat":[1],"database":[1,2],"datA":[3],' +
      '"durations":4,"duratio":5,"usagE":{"a":6},"data":[7,8],"usage":{"a":9}}';
    for (const step of [1, 2, 3, 7, near.length])
      expect(scan(near, step)).toEqual({ dataItems: 2, usage: { a: 9 } });
  });
});

const chunk = (v: unknown): string => `data: ${JSON.stringify(v)}\n\n`;

describe("the SSE reader", () => {
  const usageChunk = chunk({
    choices: [],
    object: "chat.completion.chunk",
    usage: { prompt_tokens: 31, completion_tokens: 7 },
  });
  const rest = [
    chunk({ choices: [{ index: 0, delta: { content: "a" } }] }),
    ": a comment\n\n",
    chunk({ choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }),
  ].join("");
  const stream = `${rest}${usageChunk}data: [DONE]\n\n`;

  it("takes the usage-only chunk out, however the stream is cut, and counts it", () => {
    for (let step = 1; step <= stream.length; step += 7) {
      const { out, tokens } = sse(stream, step, true);
      expect(out, String(step)).toBe(`${rest}data: [DONE]\n\n`);
      expect(tokens).toEqual({ prompt: 31, completion: 7 });
    }
  });

  it("gives everything on when it is not to strip, and with CRLF line ends", () => {
    const crlf = stream.replaceAll("\n", "\r\n");
    for (const text of [stream, crlf]) {
      const { out, tokens } = sse(text, 5, false);
      expect(out).toBe(text);
      expect(tokens).toEqual({ prompt: 31, completion: 7 });
    }
    expect(sse(crlf, 3, true).out).toBe(`${rest}data: [DONE]\n\n`.replaceAll("\n", "\r\n"));
  });

  it("lets an event too big to be the usage chunk through as it comes", () => {
    const big = chunk({ choices: [], usage: { prompt_tokens: 1 }, pad: "x".repeat(MAX_HELD) });
    const s = new SseUsage({ strip: true });
    const first = s.push(Buffer.from(big.slice(0, MAX_HELD + 10)));
    // Nothing more than the bound was held back.
    expect(first.length).toBe(MAX_HELD + 10);
    const out = Buffer.concat([first, s.push(Buffer.from(big.slice(MAX_HELD + 10))), s.end()]);
    expect(out.toString()).toBe(big);
    expect(s.tokens).toEqual({ prompt: 1 });
  });

  it("reads a Responses stream's response.completed and an Anthropic stream's deltas", () => {
    const responses = [
      "event: response.created\n",
      chunk({ type: "response.created", response: { id: "r", usage: null } }),
      "event: response.completed\n",
      chunk({
        type: "response.completed",
        response: { output: [{ text: "}}" }], usage: { input_tokens: 31, output_tokens: 5 } },
      }),
    ].join("");
    expect(sse(responses, 4, false).tokens).toEqual({ prompt: 31, completion: 5 });
    const messages = [
      "event: message_start\n",
      chunk({ type: "message_start", message: { usage: { input_tokens: 12, output_tokens: 1 } } }),
      "event: message_delta\n",
      chunk({ type: "message_delta", delta: {}, usage: { output_tokens: 9 } }),
      "event: message_stop\n",
      chunk({ type: "message_stop" }),
    ].join("");
    expect(sse(messages, 9, false).tokens).toEqual({ prompt: 12, completion: 9 });
  });
});
