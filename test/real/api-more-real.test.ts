/**
 * Embeddings, Responses and Messages against the real llama-server (built by
 * test/real/llama-server.sh), through relay and tunnel, each compared with the same call made
 * directly to llama-server: same status, same event types in the same order, same content for
 * a fixed seed. llama-server serves all three natively, so the club passes them through.
 * Run with `npm run test:real`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALICE_KEY, startStack, type Stack } from "../e2e/stack.ts";
import { startLlama, type RealLlama } from "./llama.ts";

const CHAT = "tiny-qwen2-chat";
const EMBED = "tiny-embed";
let chat: RealLlama;
let embed: RealLlama;
let stack: Stack;

beforeAll(async () => {
  chat = await startLlama();
  embed = await startLlama(["--embeddings", "--pooling", "mean", "--alias", EMBED]);
  stack = await startStack([chat.url, embed.url]);
}, 120_000);

afterAll(async () => {
  await stack.stop();
  await Promise.all([chat.stop(), embed.stop()]);
});

interface Answer {
  status: number;
  text: string;
}

async function call(base: string, path: string, body: unknown): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ALICE_KEY}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

/** The same call made directly and through the club (`model` set for each). */
async function both(
  engine: RealLlama,
  path: string,
  body: Record<string, unknown>,
  model: string,
): Promise<[Answer, Answer]> {
  const direct = await call(engine.url, path, body);
  const club = await call(stack.relayUrl, path, { ...body, model });
  return [direct, club];
}

function events(text: string): { type: string; data: Record<string, unknown> }[] {
  return [...text.matchAll(/^event: (\S+)\ndata: (.*)$/gm)].map((m) => ({
    type: m[1] ?? "",
    data: JSON.parse(m[2] ?? "{}") as Record<string, unknown>,
  }));
}

/** The text of a Responses or Messages stream: its text deltas joined. */
function streamedText(text: string): string {
  return events(text)
    .map(({ data }) => {
      if (data.type === "response.output_text.delta") return String(data.delta);
      const delta = data.delta as { type?: string; text?: string } | undefined;
      return data.type === "content_block_delta" && delta?.type === "text_delta"
        ? (delta.text ?? "")
        : "";
    })
    .join("");
}

function outputText(text: string): string {
  const body = JSON.parse(text) as {
    output?: { content?: { text?: string }[] }[];
    content?: { text?: string }[];
  };
  const parts = body.output ? body.output.flatMap((o) => o.content ?? []) : (body.content ?? []);
  return parts.map((p) => p.text ?? "").join("");
}

describe("real llama-server: embeddings, responses and messages through the club", () => {
  it("lists the --embeddings server's model as an embedding card", async () => {
    const cards = (await stack.client.models.list()).data as unknown as Record<string, unknown>[];
    expect(cards.find((c) => c.id === EMBED)).toMatchObject({ service_type: "embedding" });
    expect(cards.find((c) => c.id === CHAT)).toMatchObject({ service_type: "llm" });
  });

  for (const format of ["float", "base64"])
    it(`embeddings, a batch, encoding_format ${format}: the engine's own vectors`, async () => {
      const body = { input: ["hello", "a rig at home", "x"], encoding_format: format };
      const [direct, club] = await both(embed, "/v1/embeddings", body, EMBED);
      expect(club.status).toBe(direct.status);
      expect(club.status).toBe(200);
      const data = (t: string) => (JSON.parse(t) as { data: unknown[] }).data;
      expect(data(club.text)).toEqual(data(direct.text));
      expect((JSON.parse(club.text) as { usage: unknown }).usage).toEqual(
        (JSON.parse(direct.text) as { usage: unknown }).usage,
      );
    });

  it("a chat-only model gets 404 no_provider for embeddings", async () => {
    const res = await call(stack.relayUrl, "/v1/embeddings", { model: CHAT, input: "x" });
    expect(res.status).toBe(404);
    expect(JSON.parse(res.text)).toMatchObject({ error: { type: "no_provider" } });
  });

  it("responses, plain: same status and text for a fixed seed", async () => {
    const body = { input: "Say hi", max_output_tokens: 6, seed: 5, temperature: 0 };
    const [direct, club] = await both(chat, "/v1/responses", body, CHAT);
    expect(club.status).toBe(direct.status);
    expect(outputText(club.text)).toBe(outputText(direct.text));
    expect((JSON.parse(club.text) as { usage: unknown }).usage).toBeDefined();
  });

  it("responses, streamed: same event types in the same order, same text", async () => {
    const body = { input: "Say hi", max_output_tokens: 6, seed: 5, temperature: 0, stream: true };
    const [direct, club] = await both(chat, "/v1/responses", body, CHAT);
    expect(club.status).toBe(direct.status);
    expect(events(club.text).map((e) => e.type)).toEqual(events(direct.text).map((e) => e.type));
    expect(events(club.text).at(-1)?.type).toBe("response.completed");
    expect(streamedText(club.text)).toBe(streamedText(direct.text));
  });

  it("responses with a tool: same status and output item types", async () => {
    const body = {
      input: "Weather in Paris?",
      tools: [
        {
          type: "function",
          name: "get_weather",
          parameters: { type: "object", properties: { city: { type: "string" } } },
        },
      ],
      max_output_tokens: 8,
      seed: 3,
      temperature: 0,
    };
    const [direct, club] = await both(chat, "/v1/responses", body, CHAT);
    expect(club.status).toBe(direct.status);
    const types = (t: string) =>
      ((JSON.parse(t) as { output?: { type: string }[] }).output ?? []).map((o) => o.type);
    expect(types(club.text)).toEqual(types(direct.text));
  });

  it("messages, plain and streamed: same status, event types and text", async () => {
    const body = {
      max_tokens: 6,
      messages: [{ role: "user", content: "Say hi" }],
      temperature: 0,
      seed: 5,
    };
    const [direct, club] = await both(chat, "/v1/messages", body, CHAT);
    expect(club.status).toBe(direct.status);
    expect(outputText(club.text)).toBe(outputText(direct.text));
    const [sDirect, sClub] = await both(chat, "/v1/messages", { ...body, stream: true }, CHAT);
    expect(sClub.status).toBe(sDirect.status);
    expect(events(sClub.text).map((e) => e.type)).toEqual(events(sDirect.text).map((e) => e.type));
    expect(streamedText(sClub.text)).toBe(streamedText(sDirect.text));
  });
});
