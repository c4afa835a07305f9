/**
 * The voice library end to end: `club-provider relay` and `start` with a fake Dia-TTS-Server.
 * A member uploads clips with transcripts, lists them, clones a voice by sample id (the relay
 * sends the daemon the clip and transcript; Dia gets the clip uploaded and the transcript in
 * its clone request), and deletes one; another member's sample id is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recording } from "../fakes/audio.ts";
import { FakeDia } from "../fakes/dia.ts";
import { ALICE_KEY, BOB_KEY, startStack, type Stack } from "./stack.ts";

let dia: FakeDia;
let stack: Stack;

beforeAll(async () => {
  dia = new FakeDia();
  await dia.start();
  stack = await startStack([dia.url], [], {}, ["--voice-max-seconds", "10"]);
});

afterAll(async () => {
  await stack.stop();
  await dia.stop();
});

interface Sample {
  id: number;
  name: string;
  transcript: string;
  duration_seconds: number;
  content_type: string;
  visibility: string;
}

async function upload(
  clip: Buffer,
  fields: Record<string, string>,
  key = ALICE_KEY,
  path = "/api/inference/voice-samples/",
): Promise<Response> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append("file", new Blob([clip], { type: "audio/wav" }), "me.wav");
  return fetch(`${stack.relayUrl}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}` },
    body: form,
  });
}

const voice = (body: Record<string, unknown>, key = ALICE_KEY): Promise<Response> =>
  fetch(`${stack.relayUrl}/v1/voice/generations`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "dia-1.6b", input: "[S1] Hello there.", ...body }),
  });

const list = async (key = ALICE_KEY, path = "/api/inference/voice-samples/") =>
  (
    (await (
      await fetch(`${stack.relayUrl}${path}`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as { data: Sample[] }
  ).data;

describe("voice library", () => {
  it("uploads a clip with its transcript and lists it under both paths", async () => {
    const res = await upload(recording(2), { name: "me", transcript: "This is my voice." });
    expect(res.status).toBe(201);
    const sample = (await res.json()) as Sample;
    expect(sample).toMatchObject({
      name: "me",
      transcript: "This is my voice.",
      duration_seconds: 2,
      content_type: "audio/wav",
      visibility: "PRIVATE",
    });
    expect(Number.isInteger(sample.id)).toBe(true);
    expect((await list()).map((s) => s.id)).toContain(sample.id);
    expect((await list(ALICE_KEY, "/v1/voice/samples")).map((s) => s.id)).toContain(sample.id);
    expect((await list(BOB_KEY)).map((s) => s.id)).not.toContain(sample.id);
  });

  it("clones from a sample id: Dia gets the clip and, in its clone request, the transcript", async () => {
    const clip = recording(3);
    const sample = (await (
      await upload(clip, { name: "narrator", transcript: "Once upon a time." })
    ).json()) as Sample;
    const res = await voice({ speakers: { S1: sample.id }, seed: 4 });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("audio/wav");
    await res.arrayBuffer();
    const sent = dia.generations.at(-1)?.body ?? {};
    expect(sent).toMatchObject({
      voice_mode: "clone",
      transcript: "[S1] Once upon a time.",
      seed: 4,
    });
    expect(dia.references.get(String(sent.clone_reference_filename))?.equals(clip)).toBe(true);
  });

  it("refuses another member's sample (404) and malformed speakers (400 naming the field)", async () => {
    const bobs = (await (
      await upload(recording(1), { name: "bob", transcript: "Bob here." }, BOB_KEY)
    ).json()) as Sample;
    const asked = dia.generations.length;
    const other = await voice({ speakers: { S1: bobs.id } });
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { type: string } }).error.type).toBe(
      "not_found_error",
    );
    const unknown = await voice({ speakers: { S1: 999_999 } });
    expect(unknown.status).toBe(404);
    const malformed = await voice({ speakers: { S1: 1.5 } });
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { message: string } }).error.message).toContain(
      '"speakers.S1"',
    );
    expect(dia.generations.length).toBe(asked);
    // Bob made it PUBLIC: now anyone may clone it.
    const pub = (await (
      await upload(
        recording(1),
        { name: "bob2", transcript: "Public Bob.", visibility: "PUBLIC" },
        BOB_KEY,
      )
    ).json()) as Sample;
    expect((await voice({ speakers: { S1: pub.id } })).status).toBe(200);
  });

  it("checks the clip by its header: not audio, or too long, is refused naming the field", async () => {
    const fake = await upload(Buffer.from("not audio at all, just text"), {
      name: "x",
      transcript: "x",
    });
    expect(fake.status).toBe(400);
    expect(((await fake.json()) as { error: { message: string } }).error.message).toContain(
      '"file"',
    );
    const long = await upload(recording(11), { name: "long", transcript: "x" });
    expect(long.status).toBe(400);
    expect(((await long.json()) as { error: { message: string } }).error.message).toContain(
      "up to 10 s",
    );
    const noTranscript = await upload(recording(1), { name: "x" });
    expect(noTranscript.status).toBe(400);
    expect(((await noTranscript.json()) as { error: { message: string } }).error.message).toContain(
      '"transcript"',
    );
  });

  it("deletes a sample: gone from the list, and its id no longer clones", async () => {
    const sample = (await (
      await upload(recording(1), { name: "temp", transcript: "Temporary." })
    ).json()) as Sample;
    const bob = await fetch(`${stack.relayUrl}/api/inference/voice-samples/${sample.id}/`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${BOB_KEY}` },
    });
    expect(bob.status).toBe(404);
    const del = await fetch(`${stack.relayUrl}/api/inference/voice-samples/${sample.id}/`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${ALICE_KEY}` },
    });
    expect(del.status).toBe(200);
    expect((await list()).map((s) => s.id)).not.toContain(sample.id);
    expect((await voice({ speakers: { S1: sample.id } })).status).toBe(404);
  });
});
