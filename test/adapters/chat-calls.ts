/** The chat calls the conformance suite makes by default, for every LLM adapter. */
import { expect } from "vitest";
import type { DiscoveredModel } from "../../adapters/adapter.ts";
import { chatCall, readUntil, sseContent } from "../fakes/util.ts";
import type { ConformanceCalls } from "./conformance.ts";

/** What the suite asks chat fakes to generate. */
export const TOKENS = [" alpha", " beta", " gamma", " delta", " epsilon", " zeta"];
const HI = [{ role: "user", content: "hi" }];

/** What an LLM adapter's models must be. */
export function llmModel(model: DiscoveredModel): void {
  expect(model.type).toBe("llm");
  expect(model.features).toContain("streaming");
  expect(model.outputModalities).toEqual(["text"]);
}

/** What an embedding model's card must be: text in, vectors out, nothing streamed. */
export function embeddingModel(model: DiscoveredModel): void {
  expect(model.type).toBe("embedding");
  expect(model.features).toEqual([]);
  expect(model.inputModalities).toEqual(["text"]);
  expect(model.outputModalities).toEqual(["embedding"]);
}

/** The chat calls every LLM adapter is held to. */
export const CHAT_CALLS: ConformanceCalls = {
  execute: {
    call: (upstream, model, s) =>
      chatCall(
        upstream,
        model,
        { messages: [{ role: "user", content: "Say hello" }], max_tokens: 3 },
        s,
      ),
    check(reply, body, fake, model) {
      expect(reply.headers["content-type"]).toMatch(/^application\/json/);
      const json = JSON.parse(body.toString("utf8"));
      expect(json.choices[0].message.content).toBe(TOKENS.slice(0, 3).join(""));
      expect(json.choices[0].finish_reason).toBe("length");
      const seen = fake.requests.at(-1)!;
      const messages = [{ role: "user", content: "Say hello" }];
      expect(seen.body).toEqual({ model: model.servedId, messages, max_tokens: 3 });
      expect(seen.headers.accept).toBe("application/json");
    },
  },
  stream: {
    call: (upstream, model, s) => chatCall(upstream, model, { messages: HI, stream: true }, s),
    contentType: /^text\/event-stream/,
    async first(body) {
      const text = await readUntil(body, "\n\n");
      expect(text).toContain('"role":"assistant"');
      return Buffer.from(text);
    },
    check(all) {
      const text = all.toString("utf8");
      expect(sseContent(text)).toBe(TOKENS.join(""));
      expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    },
  },
  error: {
    call: (upstream, model, s) => chatCall(upstream, model, { max_tokens: 2 }, s),
    check(status, body) {
      expect(status).toBe(400);
      expect(JSON.parse(body)).toHaveProperty("error");
    },
  },
};
