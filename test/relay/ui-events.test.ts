/**
 * The club page's live stream (`GET /ui/api/events`) against a real relay: the key as a
 * header, a `change` event when one of the member's jobs is saved, and the per-member limit
 * (`uiStreams`), freed again when a page goes away.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/log.ts";
import { KeyRing } from "../../src/relay/keys.ts";
import { createRelay, type Relay } from "../../src/relay/server.ts";

const ALICE = "sk-ui-events-alice-0123456789";
const BOB = "sk-ui-events-bob-0123456789";

/** An open stream: its response, what it has received so far, and a way to close it. */
async function open(relay: Relay, key: string) {
  const abort = new AbortController();
  const res = await fetch(`${relay.url}/ui/api/events`, {
    headers: { authorization: `Bearer ${key}` },
    signal: abort.signal,
  });
  const seen = { text: "" };
  if (res.ok && res.body) {
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    void (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        seen.text += value;
      }
    })().catch(() => undefined);
  }
  return { res, seen, close: () => abort.abort() };
}

describe("the club page's live stream", () => {
  let relay: Relay;

  beforeAll(async () => {
    relay = await createRelay({
      port: 0,
      keys: new KeyRing({ [ALICE]: "alice", [BOB]: "bob" }),
      log: silentLogger,
      uiStreams: 2,
    });
  });
  afterAll(async () => {
    await relay.close();
  });

  it("needs the key as a header, and says hello to the member", async () => {
    const none = await fetch(`${relay.url}/ui/api/events`);
    expect(none.status).toBe(401);
    // A key in the URL is not a key.
    const inUrl = await fetch(`${relay.url}/ui/api/events?key=${ALICE}`);
    expect(inUrl.status).toBe(401);
    const s = await open(relay, ALICE);
    expect(s.res.status).toBe(200);
    expect(s.res.headers.get("content-type")).toBe("text/event-stream");
    await expect.poll(() => s.seen.text).toContain('event: hello\ndata: {"member":"alice"}');
    s.close();
  });

  it("tells the member's pages when one of their jobs is saved, and nobody else's", async () => {
    const alice = await open(relay, ALICE);
    const bob = await open(relay, BOB);
    await expect.poll(() => alice.seen.text).toContain("event: hello");
    await expect.poll(() => bob.seen.text).toContain("event: hello");
    const job = await fetch(`${relay.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${ALICE}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "m",
        messages: [{ role: "user", content: "hi" }],
        async: true,
      }),
    });
    expect(job.status).toBe(202);
    await expect.poll(() => alice.seen.text).toContain('event: change\ndata: {"changed":["work"]}');
    // Bob's stream was open all along; the change was alice's alone.
    const cancel = await fetch(
      `${relay.url}/v1/jobs/${((await job.json()) as { id: string }).id}/cancel`,
      { method: "POST", headers: { authorization: `Bearer ${ALICE}` } },
    );
    expect(cancel.ok).toBe(true);
    await expect.poll(() => alice.seen.text.split("event: change").length).toBeGreaterThan(2);
    expect(bob.seen.text).not.toContain("event: change");
    alice.close();
    bob.close();
  });

  it("holds at most uiStreams streams per member, with the error envelope beyond; a closed one frees its place", async () => {
    await expect.poll(async () => (await probeCount(relay, ALICE)) === 0).toBe(true);
    const first = await open(relay, ALICE);
    const second = await open(relay, ALICE);
    expect([first.res.status, second.res.status]).toEqual([200, 200]);
    const third = await fetch(`${relay.url}/ui/api/events`, {
      headers: { authorization: `Bearer ${ALICE}` },
    });
    expect(third.status).toBe(429);
    expect(third.headers.get("retry-after")).toBe("30");
    const body = (await third.json()) as { error: { type: string; message: string } };
    expect(body.error.type).toBe("rate_limit_error");
    expect(body.error.message).toMatch(/2 live club pages open already.*--ui-streams/);
    // Another member's place is their own.
    const bobs = await open(relay, BOB);
    expect(bobs.res.status).toBe(200);
    first.close();
    await expect
      .poll(async () => {
        const again = await open(relay, ALICE);
        again.close();
        return again.res.status;
      })
      .toBe(200);
    second.close();
    bobs.close();
  });
});

/** Whether alice can open a stream now: the streams of earlier tests have gone. */
async function probeCount(relay: Relay, key: string): Promise<number> {
  const res = await fetch(`${relay.url}/ui/api/events`, {
    headers: { authorization: `Bearer ${key}` },
  });
  await res.body?.cancel();
  return res.status === 200 ? 0 : 1;
}
