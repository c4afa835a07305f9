import { describe, expect, it } from "vitest";
import { ProgressRegistry, TokenCounter } from "../../src/gateway/progress.ts";

const event = (delta: unknown): string =>
  `data: ${JSON.stringify({ choices: [{ index: 0, delta }] })}\n\n`;

describe("the requests in flight", () => {
  it("counts the streamed events that carry text, across chunk boundaries", () => {
    const stream =
      event({ role: "assistant", content: null }) +
      event({ content: "Hel" }) +
      ": ping\n\n" +
      event({ content: 'lo "there"' }) +
      event({ reasoning_content: "hm" }) +
      event({}) +
      "data: [DONE]\n\n";
    const bytes = Buffer.from(stream);
    for (const size of [1, 3, 7, bytes.length]) {
      const counter = new TokenCounter();
      for (let i = 0; i < bytes.length; i += size) counter.push(bytes.subarray(i, i + size));
      expect(counter.count, `chunks of ${size}`).toBe(3);
    }
  });

  it("counts a text completion's pieces, and skips a line too long to hold", () => {
    const counter = new TokenCounter();
    counter.push(Buffer.from(`data: {"choices":[{"text":"a"}]}\n\n`));
    counter.push(Buffer.from(`data: {"choices":[{"text":"${"x".repeat(70 * 1024)}`));
    counter.push(Buffer.from(`"}]}\n\ndata: {"choices":[{"text":"b"}]}\n\n`));
    expect(counter.count).toBe(2);
  });

  it("lists each request with its member, bytes and tokens until it ends", () => {
    const registry = new ProgressRegistry();
    const job = registry.begin({
      request_id: "req_1",
      model: "m",
      endpoint: "/v1/chat/completions",
      service: "s",
      member: "bob",
    });
    job.sent(Buffer.from(event({ content: "a" })), true);
    job.sent(Buffer.from(event({ content: "b" })), true);
    expect(registry.list()).toMatchObject([
      { member: "bob", tokens: 2, bytes: 2 * event({ content: "a" }).length },
    ]);
    const plain = registry.begin({
      request_id: "req_2",
      model: "m",
      endpoint: "/v1/embeddings",
      service: "s",
      member: null,
    });
    plain.sent(Buffer.from("{}"), false);
    expect(registry.list()[1]).toMatchObject({ member: null, bytes: 2, tokens: null });
    job.end();
    plain.end();
    expect(registry.list()).toEqual([]);
  });

  it("ends with the tokens the answer reported, or the events it streamed", () => {
    const registry = new ProgressRegistry();
    const begin = () =>
      registry.begin({
        request_id: "r",
        model: "m",
        endpoint: "/v1/chat/completions",
        service: "s",
        member: null,
      });
    // llama-server's shape: `usage`, then `id` and `timings`, after a long content.
    const answer = Buffer.from(
      JSON.stringify({
        choices: [{ index: 0, message: { role: "assistant", content: "x".repeat(100_000) } }],
        object: "chat.completion",
        usage: { completion_tokens: 8, prompt_tokens: 13, total_tokens: 21 },
        id: "chatcmpl-1",
        timings: { prompt_n: 13, predicted_n: 8, predicted_ms: 41.2 },
      }),
    );
    const json = begin();
    for (let i = 0; i < answer.length; i += 1000) json.sent(answer.subarray(i, i + 1000), false);
    expect(json.end()).toBe(8);
    // A stream whose last chunk carries usage (`stream_options.include_usage`): its figure.
    const streamed = begin();
    for (const c of ["a", "b", "c"]) streamed.sent(Buffer.from(event({ content: c })), true);
    streamed.sent(Buffer.from(`data: {"choices":[],"usage":{"completion_tokens":5}}\n\n`), true);
    expect(streamed.end()).toBe(5);
    // Without usage: the text events counted; a plain answer that says nothing: unknown.
    const counted = begin();
    for (const c of ["a", "b"]) counted.sent(Buffer.from(event({ content: c })), true);
    expect(counted.end()).toBe(2);
    const silent = begin();
    silent.sent(Buffer.from('{"data":[{"embedding":[0.1]}]}'), false);
    expect(silent.end()).toBeNull();
  });
});
