import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { describe, it, expect } from "vitest";
import {
  MultipartError,
  MultipartFilter,
  boundaryOf,
  type MultipartFilterOptions,
} from "../../src/http/multipart.ts";

type Options = Omit<MultipartFilterOptions, "boundary">;
type Entry = [string, string | { name: string; type: string; sha256: string }];

const DROP = ["visibility", "collection"];
const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Deterministic bytes (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(length: number, seed: number): Buffer {
  const next = random(seed);
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/** A body exactly as Node's fetch (undici) sends it, with its boundary. */
async function serialize(
  form: FormData,
): Promise<{ body: Buffer; type: string; boundary: string }> {
  const response = new Response(form);
  const type = response.headers.get("content-type") ?? "";
  const boundary = boundaryOf(type);
  if (boundary === undefined) throw new Error(`no boundary in ${type}`);
  return { body: Buffer.from(await response.arrayBuffer()), type, boundary };
}

/** A typical transcription upload; `file` before `model`, as the OpenAI SDK may send it. */
function uploadForm(fileBytes: Buffer): FormData {
  const form = new FormData();
  form.append("visibility", "private");
  form.append("file", new Blob([fileBytes], { type: "audio/mpeg" }), "speech.mp3");
  form.append("model", "whisper-1");
  form.append("collection", "meetings");
  form.append("language", "fr");
  return form;
}

// Digests, not buffers: a deep equal of megabytes byte by byte takes seconds.
const sha256 = (data: ArrayBuffer | Buffer) =>
  createHash("sha256")
    .update(Buffer.isBuffer(data) ? data : Buffer.from(data))
    .digest("hex");

async function entries(form: FormData): Promise<Entry[]> {
  const out: Entry[] = [];
  for (const [key, value] of form) {
    out.push([
      key,
      typeof value === "string"
        ? value
        : { name: value.name, type: value.type, sha256: sha256(await value.arrayBuffer()) },
    ]);
  }
  return out;
}

async function reparse(body: Buffer, type: string): Promise<FormData> {
  // Deprecated for servers, but it is the parser real clients and tests agree on: our oracle.
  return new Response(body, { headers: { "content-type": type } }).formData();
}

/** The body with the named parts cut out, by plain string splitting (an independent oracle). */
function withoutParts(body: Buffer, boundary: string, names: readonly string[]): Buffer {
  const delimiter = `\r\n--${boundary}`;
  const segments = `\r\n${body.toString("latin1")}`.split(delimiter);
  const kept = segments.filter(
    (segment) => !names.some((name) => segment.split("\r\n\r\n")[0]?.includes(`name="${name}"`)),
  );
  return Buffer.from(kept.join(delimiter).slice(2), "latin1");
}

function chunked(body: Buffer, size: () => number): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0; at < body.length;) {
    const end = Math.min(body.length, at + Math.max(1, size()));
    chunks.push(body.subarray(at, end));
    at = end;
  }
  return chunks;
}

function collector(out: Buffer[], onWrite?: () => void): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      out.push(chunk);
      onWrite?.();
      callback();
    },
  });
}

async function run(
  boundary: string,
  chunks: Iterable<Buffer> | AsyncIterable<Buffer>,
  options: Options = { dropFields: DROP, captureFields: ["model"] },
): Promise<{ out: Buffer; captured: Record<string, string> }> {
  const filter = new MultipartFilter({ boundary, ...options });
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunks), filter, collector(out));
  return { out: Buffer.concat(out), captured: await filter.captured };
}

async function runFailing(
  boundary: string,
  chunks: Iterable<Buffer>,
  options: Options = { dropFields: DROP, captureFields: ["model"] },
): Promise<{ streamError: unknown; capturedError: unknown }> {
  const filter = new MultipartFilter({ boundary, ...options });
  const failed = (err: unknown) => err;
  const streamError = await pipeline(Readable.from(chunks), filter, collector([])).then(
    () => undefined,
    failed,
  );
  const capturedError = await filter.captured.then(() => undefined, failed);
  return { streamError, capturedError };
}

/** The stream failed with `code`; so did `captured`, unless it had resolved before the fault. */
function expectCode(
  result: { streamError: unknown; capturedError: unknown },
  code: string,
  capturedFirst = false,
): void {
  expect(result.streamError).toBeInstanceOf(MultipartError);
  expect(result.streamError).toMatchObject({ code });
  expect(result.capturedError).toBe(capturedFirst ? undefined : result.streamError);
}

describe("boundaryOf", () => {
  it("reads the boundary of a real FormData content-type", async () => {
    const { type } = await serialize(new FormData());
    expect(boundaryOf(type)).toBe(/boundary=(.*)$/.exec(type)?.[1]);
  });

  it("reads quoted, unquoted and differently cased forms", () => {
    expect(boundaryOf("multipart/form-data; boundary=abc123")).toBe("abc123");
    expect(boundaryOf('Multipart/Form-Data; charset=utf-8; BOUNDARY="a b:c"')).toBe("a b:c");
    expect(boundaryOf('multipart/form-data;boundary="----x"  ')).toBe("----x");
  });

  it("returns undefined for other types and missing or invalid boundaries", () => {
    expect(boundaryOf(undefined)).toBeUndefined();
    expect(boundaryOf("application/json")).toBeUndefined();
    expect(boundaryOf("multipart/mixed; boundary=abc")).toBeUndefined();
    expect(boundaryOf("multipart/form-data")).toBeUndefined();
    expect(boundaryOf("multipart/form-data; boundary=")).toBeUndefined();
    expect(boundaryOf('multipart/form-data; boundary="abc')).toBeUndefined();
    expect(boundaryOf("multipart/form-data; boundary=a; boundary=b")).toBeUndefined();
    expect(boundaryOf(`multipart/form-data; boundary=${"x".repeat(71)}`)).toBeUndefined();
    expect(boundaryOf('multipart/form-data; boundary="bad\\"quote"')).toBeUndefined();
  });
});

describe("MultipartFilter", () => {
  it("drops fields, captures model, and keeps everything else byte for byte", async () => {
    const fileBytes = randomBytes(300_000, 1);
    const { body, type, boundary } = await serialize(uploadForm(fileBytes));
    const { out, captured } = await run(boundary, [body]);

    expect(captured).toEqual({ model: "whisper-1" });
    expect(out.equals(withoutParts(body, boundary, DROP))).toBe(true);
    expect(await entries(await reparse(out, type))).toEqual([
      ["file", { name: "speech.mp3", type: "audio/mpeg", sha256: sha256(fileBytes) }],
      ["model", "whisper-1"],
      ["language", "fr"],
    ]);
  });

  it("passes a body with nothing to drop through unchanged", async () => {
    const { body, boundary } = await serialize(uploadForm(randomBytes(10_000, 2)));
    const { out } = await run(boundary, [body], { dropFields: [], captureFields: ["model"] });
    expect(out.equals(body)).toBe(true);
  });

  it("gives the same output when fed one byte at a time", async () => {
    const { body, boundary } = await serialize(uploadForm(randomBytes(3_000, 3)));
    const { out, captured } = await run(
      boundary,
      chunked(body, () => 1),
    );
    expect(captured).toEqual({ model: "whisper-1" });
    expect(out.equals(withoutParts(body, boundary, DROP))).toBe(true);
  });

  it("gives the same output for random chunk sizes", async () => {
    const { body, boundary } = await serialize(uploadForm(randomBytes(50_000, 4)));
    const expected = withoutParts(body, boundary, DROP);
    for (let seed = 1; seed <= 40; seed++) {
      const next = random(seed);
      const max = [3, 50, 200, 5_000, 70_000][seed % 5] ?? 1;
      const { out, captured } = await run(
        boundary,
        chunked(body, () => Math.ceil(next() * max)),
      );
      expect(captured, `seed ${seed}`).toEqual({ model: "whisper-1" });
      expect(out.equals(expected), `seed ${seed}`).toBe(true);
    }
  });

  it("finds boundaries split at every position between two chunks", async () => {
    const { body, boundary } = await serialize(uploadForm(Buffer.from("\r\n--\r\n-\r")));
    const expected = withoutParts(body, boundary, DROP);
    for (let at = 0; at <= body.length; at++) {
      const { out, captured } = await run(boundary, [body.subarray(0, at), body.subarray(at)]);
      expect(captured, `split at ${at}`).toEqual({ model: "whisper-1" });
      expect(out.equals(expected), `split at ${at}`).toBe(true);
    }
  });

  it("holds output back until a model sent after the file arrives, then streams", async () => {
    const { body, boundary } = await serialize(uploadForm(randomBytes(200_000, 5)));
    const valueEnd = body.indexOf("whisper-1") + "whisper-1".length;
    const filter = new MultipartFilter({ boundary, dropFields: DROP, captureFields: ["model"] });
    const received: Buffer[] = [];
    filter.on("data", (chunk: Buffer) => received.push(chunk));
    let captured: Record<string, string> | undefined;
    void filter.captured.then((fields) => (captured = fields));

    filter.write(body.subarray(0, valueEnd));
    await tick();
    expect(captured).toBeUndefined();
    expect(received).toHaveLength(0);
    expect(filter.heldBytes).toBeGreaterThan(200_000);

    const nextDelimiter = body.indexOf(`\r\n--${boundary}`, valueEnd);
    filter.write(body.subarray(valueEnd, nextDelimiter + boundary.length + 4));
    await tick();
    expect(captured).toEqual({ model: "whisper-1" });
    expect(received.length).toBeGreaterThan(0);
    expect(filter.heldBytes).toBe(0);

    filter.end(body.subarray(nextDelimiter + boundary.length + 4));
    await new Promise((resolve) => filter.on("end", resolve));
    expect(Buffer.concat(received).equals(withoutParts(body, boundary, DROP))).toBe(true);
  });

  it("streams at once when nothing is to be captured", async () => {
    const { body, boundary } = await serialize(uploadForm(randomBytes(20_000, 6)));
    const filter = new MultipartFilter({ boundary, dropFields: DROP, captureFields: [] });
    const received: Buffer[] = [];
    filter.on("data", (chunk: Buffer) => received.push(chunk));
    expect(await filter.captured).toEqual({});
    filter.write(body.subarray(0, 10_000));
    await tick();
    expect(received.length).toBeGreaterThan(0);
    filter.end(body.subarray(10_000));
    await new Promise((resolve) => filter.on("end", resolve));
    expect(Buffer.concat(received).equals(withoutParts(body, boundary, DROP))).toBe(true);
  });

  it("resolves with what was found when a capture field never comes", async () => {
    const form = new FormData();
    form.append("file", new Blob([randomBytes(1_000, 7)]), "a.png");
    form.append("prompt", "a cat");
    const { body, boundary } = await serialize(form);
    const { out, captured } = await run(
      boundary,
      chunked(body, () => 7),
      {
        dropFields: DROP,
        captureFields: ["model", "prompt"],
      },
    );
    expect(captured).toEqual({ prompt: "a cat" });
    expect(out.equals(body)).toBe(true);
  });

  it("captures a field that is also dropped", async () => {
    const { body, type, boundary } = await serialize(uploadForm(randomBytes(1_000, 8)));
    const { out, captured } = await run(boundary, [body], {
      dropFields: DROP,
      captureFields: ["visibility", "model"],
    });
    expect(captured).toEqual({ visibility: "private", model: "whisper-1" });
    expect([...(await reparse(out, type)).keys()]).toEqual(["file", "model", "language"]);
  });

  it("matches names as undici escapes them", async () => {
    const form = new FormData();
    form.append('say "hi"', "dropped");
    form.append('mo"del', "captured");
    form.append("kept", "yes");
    const { body, type, boundary } = await serialize(form);
    const { out, captured } = await run(boundary, [body], {
      dropFields: ['say "hi"'],
      captureFields: ['mo"del'],
    });
    expect(captured).toEqual({ 'mo"del': "captured" });
    expect(await entries(await reparse(out, type))).toEqual([
      ['mo"del', "captured"],
      ["kept", "yes"],
    ]);
  });

  it("matches quoted names with backslash-escaped quotes, and name*", async () => {
    const b = "xyz";
    const part = (disposition: string, value: string) =>
      `--${b}\r\nContent-Disposition: ${disposition}\r\n\r\n${value}\r\n`;
    const body = Buffer.from(
      part('form-data; name="a\\"b"', "ab") +
        part('form-data; name="vis\\ibility"; filename="x\\"y.txt"', "gone") +
        part("form-data; name=alias; name*=UTF-8''collection", "gone too") +
        part("FORM-DATA; NAME=model", "m1") +
        `--${b}--\r\n`,
    );
    const { out, captured } = await run(
      b,
      chunked(body, () => 3),
      {
        dropFields: DROP,
        captureFields: ['a"b', "model"],
      },
    );
    expect(captured).toEqual({ 'a"b': "ab", model: "m1" });
    expect(out.toString()).toBe(
      part('form-data; name="a\\"b"', "ab") + part("FORM-DATA; NAME=model", "m1") + `--${b}--\r\n`,
    );
  });

  it("drops the preamble and epilogue, keeps padding and the closing delimiter", async () => {
    const b = "simple boundary";
    const parts =
      `--${b} \t\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n` +
      `--${b}\r\n\r\nno headers\r\n--${b}--`;
    const body = Buffer.from(`preamble --${b}x\r\n-- ${b}\r\n${parts}\r\nepilogue --${b}--\r\n`);
    const { out, captured } = await run(
      b,
      chunked(body, () => 1),
    );
    expect(captured).toEqual({ model: "m" });
    expect(out.toString()).toBe(`${parts}\r\n`);
  });

  it("keeps a body that ends right after the closing delimiter as it is", async () => {
    const { body, type, boundary } = await serialize(uploadForm(randomBytes(500, 9)));
    const bare = body.subarray(0, body.length - 2);
    const { out } = await run(
      boundary,
      chunked(bare, () => 1),
      {
        dropFields: [],
        captureFields: ["model"],
      },
    );
    expect(out.equals(bare)).toBe(true);
    expect([...(await reparse(out, type)).keys()]).toHaveLength(5);
  });

  it("emits just the closing delimiter when every part is dropped", async () => {
    const form = new FormData();
    form.append("visibility", "private");
    form.append("collection", "c");
    const { body, type, boundary } = await serialize(form);
    const { out, captured } = await run(boundary, [body]);
    expect(captured).toEqual({});
    expect(out.toString()).toBe(`--${boundary}--\r\n`);
    expect([...(await reparse(out, type)).keys()]).toEqual([]);
  });

  it("streams a 50 MB file part through a small buffer", async () => {
    const { boundary } = await serialize(new FormData());
    const part = (name: string, value: string) =>
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
    const fileHead = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n`;
    const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
    // 64 KiB of noise with near-miss delimiters, one of them cut off at the very end.
    const block = randomBytes(64 * 1024, 10);
    const nearMiss = `\r\n--${boundary.slice(0, -1)}`;
    for (const at of [100, 1000, 40_000]) block.write(`${nearMiss}X`, at, "latin1");
    block.write(nearMiss, block.length - nearMiss.length, "latin1");
    block[0] = 0x58; // "X": the near miss at the end of one block stays a near miss
    const blocks = 800; // 50 MiB

    const head = Buffer.from(part("model", "whisper-1") + part("visibility", "private") + fileHead);
    const expectedHead = Buffer.from(part("model", "whisper-1") + fileHead);
    const expected = createHash("sha256").update(expectedHead);
    for (let i = 0; i < blocks; i++) expected.update(block);
    expected.update(tail);

    const filter = new MultipartFilter({ boundary, dropFields: DROP, captureFields: ["model"] });
    let maxBuffered = 0;
    const observe = () => (maxBuffered = Math.max(maxBuffered, filter.bufferedBytes));
    function* source(): Generator<Buffer> {
      yield head;
      for (let i = 0; i < blocks; i++) {
        yield block;
        observe();
      }
      yield tail;
    }
    const hash = createHash("sha256");
    let bytes = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        bytes += chunk.length;
        observe();
        callback();
      },
    });
    await pipeline(Readable.from(source()), filter, sink);

    expect(await filter.captured).toEqual({ model: "whisper-1" });
    expect(bytes).toBe(expectedHead.length + blocks * block.length + tail.length);
    expect(hash.digest("hex")).toBe(expected.digest("hex"));
    expect(maxBuffered).toBeLessThan(1024 * 1024);
  });

  it("keeps back only a tail that could start a delimiter once streaming", async () => {
    const b = "bnd";
    const filter = new MultipartFilter({ boundary: b, dropFields: [], captureFields: ["model"] });
    filter.resume();
    filter.write(
      `--${b}\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n--${b}\r\n\r\n`,
    );
    await filter.captured;
    filter.write("file bytes\r\n-");
    expect(filter.bufferedBytes).toBe(3); // "\r\n-" may begin "\r\n--bnd"
    filter.write("-bn");
    expect(filter.bufferedBytes).toBe(6);
    filter.write("x more bytes \r");
    expect(filter.bufferedBytes).toBe(1);
    filter.write("\nno");
    expect(filter.bufferedBytes).toBe(0);
    filter.destroy();
  });

  it("streams a real fetch body (web stream chunks) the same way", async () => {
    const form = uploadForm(randomBytes(2_000_000, 11));
    const response = new Response(form);
    const type = response.headers.get("content-type") ?? "";
    const stream = response.body as WebReadableStream<Uint8Array>;
    const { out, captured } = await run(boundaryOf(type) ?? "", Readable.fromWeb(stream));
    expect(captured).toEqual({ model: "whisper-1" });
    const expected = (await entries(form)).filter(([name]) => !DROP.includes(name));
    expect(await entries(await reparse(out, type))).toEqual(expected);
  });

  it("fails with multipart_too_large when held output passes maxHeldBytes", async () => {
    const { body, boundary } = await serialize(uploadForm(randomBytes(100_000, 12)));
    const result = await runFailing(
      boundary,
      chunked(body, () => 4096),
      {
        dropFields: DROP,
        captureFields: ["model"],
        maxHeldBytes: 64 * 1024,
      },
    );
    expectCode(result, "multipart_too_large");
  });

  it("charges what it holds back to `hold`, and fails with what `hold` throws", async () => {
    const { body, boundary } = await serialize(uploadForm(randomBytes(100_000, 13)));
    let charged = 0;
    const counted = await run(
      boundary,
      chunked(body, () => 4096),
      {
        dropFields: DROP,
        captureFields: ["model"],
        hold: (bytes) => (charged += bytes),
      },
    );
    expect(counted.captured).toEqual({ model: "whisper-1" });
    // The file comes before the model here: all of it was held, and charged.
    expect(charged).toBeGreaterThan(100_000);
    const refusal = new Error("over budget");
    const result = await runFailing(
      boundary,
      chunked(body, () => 4096),
      {
        dropFields: DROP,
        captureFields: ["model"],
        hold: (bytes) => {
          charged += bytes;
          if (charged > 150_000) throw refusal;
        },
      },
    );
    expect(result.streamError).toBe(refusal);
    expect(result.capturedError).toBe(refusal);
  });

  it("fails with multipart_field_too_large for an oversized captured value", async () => {
    const form = new FormData();
    form.append("model", "m".repeat(5_000));
    const { body, boundary } = await serialize(form);
    expectCode(await runFailing(boundary, [body]), "multipart_field_too_large");

    const small = await runFailing(boundary, [body], {
      dropFields: [],
      captureFields: ["model"],
      maxCaptureBytes: 10,
    });
    expectCode(small, "multipart_field_too_large");
    const ok = await run(boundary, [body], {
      dropFields: [],
      captureFields: ["model"],
      maxCaptureBytes: 5_000,
    });
    expect(ok.captured.model).toHaveLength(5_000);
  });

  it("refuses a capture field sent twice", async () => {
    const form = new FormData();
    form.append("model", "cheap");
    form.append("model", "expensive");
    const { body, boundary } = await serialize(form);
    // The route was already chosen on "cheap": the stream fails so the upstream call aborts.
    expectCode(await runFailing(boundary, [body]), "multipart_malformed", true);
  });

  it("fails with multipart_malformed when the boundary does not match", async () => {
    const { body } = await serialize(uploadForm(randomBytes(1_000, 13)));
    expectCode(await runFailing("not-the-boundary", [body]), "multipart_malformed");
    const huge = Buffer.alloc(100_000, 0x61);
    expectCode(await runFailing("not-the-boundary", [huge]), "multipart_malformed");
  });

  it("fails with multipart_malformed at the end of a truncated body", async () => {
    const { body, boundary } = await serialize(uploadForm(randomBytes(5_000, 14)));
    const modelEnd = body.indexOf(`\r\n--${boundary}`, body.indexOf("whisper-1"));
    // `model` counts as read once the delimiter after it has been seen in full.
    const modelRead = modelEnd + boundary.length + 4;
    const cuts = [1, 50, 200, body.length - 4_000, modelRead - 1, modelRead, body.length - 3];
    for (const cut of cuts) {
      const result = await runFailing(boundary, [body.subarray(0, cut)]);
      expectCode(result, "multipart_malformed", cut >= modelRead);
    }

    const filter = new MultipartFilter({ boundary, dropFields: [], captureFields: [] });
    filter.resume();
    const failed = new Promise((resolve) => filter.on("error", resolve));
    filter.write(body.subarray(0, body.length - 10));
    await tick();
    expect(filter.destroyed).toBe(false);
    filter.end();
    expect(await failed).toMatchObject({ code: "multipart_malformed" });
  });

  it("fails with multipart_malformed on broken framing or part headers", async () => {
    const b = "b0undary";
    const bodies = [
      `--${b}junk\r\n\r\nx\r\n--${b}--\r\n`,
      `--${b}\r\nno colon here\r\n\r\nx\r\n--${b}--\r\n`,
      `--${b}\r\nContent-Disposition: form-data; name="a"\r\nContent-Disposition: form-data; name="b"\r\n\r\nx\r\n--${b}--\r\n`,
      `--${b}\r\nContent-Disposition: form-data; name="a"; name="model"\r\n\r\nx\r\n--${b}--\r\n`,
      `--${b}\r\nContent-Disposition: form-data; name="a\r\n\r\nx\r\n--${b}--\r\n`,
      `--${b}\r\nX-Long: ${"h".repeat(20_000)}\r\n\r\nx\r\n--${b}--\r\n`,
    ];
    for (const body of bodies) {
      expectCode(
        await runFailing(
          b,
          chunked(Buffer.from(body), () => 5),
        ),
        "multipart_malformed",
      );
    }
  });

  it("does not crash the process when only captured is observed", async () => {
    const filter = new MultipartFilter({ boundary: "b", dropFields: [], captureFields: ["model"] });
    filter.end(Buffer.from("--b\r\nno colon\r\n\r\n"));
    await expect(filter.captured).rejects.toMatchObject({ code: "multipart_malformed" });
    await tick();
    expect(filter.destroyed).toBe(true);
  });

  it("rejects captured with multipart_aborted when destroyed early", async () => {
    const filter = new MultipartFilter({ boundary: "b", dropFields: [], captureFields: ["model"] });
    filter.write(Buffer.from("--b\r\n"));
    filter.destroy();
    await expect(filter.captured).rejects.toMatchObject({ code: "multipart_aborted" });
  });

  it("checks its options", () => {
    const options = { dropFields: [], captureFields: [] };
    expect(() => new MultipartFilter({ boundary: "", ...options })).toThrow(RangeError);
    expect(() => new MultipartFilter({ boundary: "bad\r\n", ...options })).toThrow(/boundary/);
    expect(() => new MultipartFilter({ boundary: "ok", maxHeldBytes: -1, ...options })).toThrow(
      /maxHeldBytes/,
    );
  });
});
