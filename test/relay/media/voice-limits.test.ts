/**
 * The voice library's limits, on an in-process relay: a clip larger than `voiceMaxBytes` is
 * refused with 413, a member at `voiceMaxPerMember` with 403 `voice_samples_full`.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Relay } from "../../../src/relay/server.ts";
import { recording } from "../../fakes/audio.ts";
import { ALICE, startRelay } from "../jobs/helpers.ts";

let relay: Relay;

beforeAll(async () => {
  relay = await startRelay({
    mediaLimits: { voiceMaxBytes: 100 * 1024, voiceMaxPerMember: 2, voiceMaxSeconds: 30 },
  });
});

afterAll(async () => {
  await relay.close();
});

function upload(clip: Buffer): Promise<Response> {
  const form = new FormData();
  form.append("name", "me");
  form.append("transcript", "Hello.");
  form.append("file", new Blob([clip]), "me.wav");
  return fetch(`${relay.url}/v1/voice/samples`, {
    method: "POST",
    headers: { authorization: `Bearer ${ALICE}` },
    body: form,
  });
}

describe("voice sample limits", () => {
  it("refuses a clip past voiceMaxBytes with 413", async () => {
    // 4 s at 16 kHz, 16-bit: 128 000 bytes, past 100 KiB.
    const res = await upload(recording(4));
    expect(res.status).toBe(413);
  });

  it("refuses a member's sample past voiceMaxPerMember with 403", async () => {
    expect((await upload(recording(1))).status).toBe(201);
    expect((await upload(recording(1))).status).toBe(201);
    const third = await upload(recording(1));
    expect(third.status).toBe(403);
    expect(((await third.json()) as { error: { code: string } }).error.code).toBe(
      "voice_samples_full",
    );
  });
});
