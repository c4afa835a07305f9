import { once } from "node:events";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import type { EngineCall, EngineReply } from "../../adapters/adapter.ts";
import { errorReply, jsonReply } from "../../adapters/kit/reply.ts";
import { BusyUpstreams, longReply } from "../../adapters/kit/job.ts";
import { readBytes } from "../fakes/audio-calls.ts";

const call = (signal = new AbortController().signal): EngineCall =>
  ({ signal }) as unknown as EngineCall;

/** A job the test settles by hand. */
function manual(): {
  job: () => Promise<EngineReply>;
  resolve: (r: EngineReply) => void;
  reject: (e: Error) => void;
} {
  let resolve!: (r: EngineReply) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<EngineReply>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { job: () => promise, resolve, reject };
}

/** The next chunk the body gives, leaving the rest to be read. */
async function nextChunk(body: Readable): Promise<string> {
  const [chunk] = (await once(body, "data")) as [Buffer];
  return chunk.toString("utf8");
}

describe("longReply", () => {
  afterEach(() => {
    delete process.env.CLUB_KEEPALIVE_MS;
  });

  it("gives the job's own reply, status included, when it ends before the keepalive", async () => {
    process.env.CLUB_KEEPALIVE_MS = "60000";
    const reply = await longReply(call(), "application/json", () =>
      Promise.resolve(errorReply(400, "invalid_request_error", "no")),
    );
    expect(reply.status).toBe(400);
    expect(JSON.parse((await readBytes(reply.body)).toString()).error.message).toBe("no");
    await expect(
      longReply(call(), "video/mp4", () => Promise.reject(new Error("down"))),
    ).rejects.toThrow("down");
  });

  it("commits a JSON reply with a space per keepalive, then sends the job's JSON", async () => {
    process.env.CLUB_KEEPALIVE_MS = "10";
    const { job, resolve } = manual();
    const reply = await longReply(call(), "application/json", job);
    expect(reply).toMatchObject({ status: 200, headers: { "content-type": "application/json" } });
    expect(await nextChunk(reply.body)).toBe(" ");
    expect(await nextChunk(reply.body)).toBe(" ");
    reply.body.pause();
    resolve(jsonReply(200, { data: [1] }));
    const text = (await readBytes(reply.body)).toString("utf8");
    expect(text.trim()).toBe('{"data":[1]}');
    expect(JSON.parse(text)).toEqual({ data: [1] });
  });

  it("commits a binary reply with its headers only: no filler in the bytes", async () => {
    process.env.CLUB_KEEPALIVE_MS = "10";
    const { job, resolve } = manual();
    const reply = await longReply(call(), "video/mp4", job);
    expect(reply.headers).toEqual({ "content-type": "video/mp4" });
    const bytes = Buffer.from([0, 0, 0, 0x1c, 0x66, 0x74, 0x79, 0x70]);
    resolve({ status: 200, headers: {}, body: Readable.from([bytes]) });
    expect((await readBytes(reply.body)).equals(bytes)).toBe(true);
  });

  it("cuts a committed reply off when the job fails or answers an error", async () => {
    process.env.CLUB_KEEPALIVE_MS = "10";
    const failing = manual();
    const reply = await longReply(call(), "application/json", failing.job);
    await nextChunk(reply.body);
    failing.reject(new Error("ComfyUI failed in KSampler"));
    await expect(readBytes(reply.body)).rejects.toThrow("ComfyUI failed in KSampler");
    const refusing = manual();
    const second = await longReply(call(), "audio/wav", refusing.job);
    refusing.resolve(errorReply(503, "upstream_error", "busy"));
    await expect(readBytes(second.body)).rejects.toThrow(
      /answered 503 after the reply was committed/,
    );
  });
});

describe("BusyUpstreams", () => {
  it("counts jobs per URL until each one ends, once", () => {
    const busy = new BusyUpstreams();
    const a = busy.begin("http://a");
    const b = busy.begin("http://a");
    a();
    a();
    expect(busy.busy("http://a")).toBe(true);
    b();
    expect(busy.busy("http://a")).toBe(false);
  });
});
