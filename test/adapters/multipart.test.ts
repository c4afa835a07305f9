import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { FormError, FormRewriter, type FormRules } from "../../adapters/kit/multipart.ts";
import { boundaryOf } from "../../src/http/multipart-parser.ts";
import { formBody, pieces, readBytes } from "../fakes/audio-calls.ts";

const BOUNDARY = "----fakeboundary7MA4YWxkTrZu0gW";
const FILE = Buffer.from(
  `RIFF${"\r\n--".repeat(50)}${BOUNDARY.slice(0, 20)}\u0000\u00ffWAVE`,
  "latin1",
);
const PASS: FormRules = { files: ["file"], field: (name, value) => [[name, value]] };

/** Rewrites `input` (fed in pieces of `size`) and reads the output with the platform's parser. */
async function rewrite(
  input: Buffer,
  rules: FormRules = PASS,
  size = 4096,
  max?: number,
): Promise<{ fields: [string, string][]; files: [string, string, string, Buffer][] }> {
  const form = new FormRewriter(BOUNDARY, rules, max);
  const out = await readBytes(pieces(input, size).pipe(form));
  const written = new Response(out, { headers: { "content-type": form.contentType } });
  // The platform's parser, deliberately not ours, reads what the rewriter wrote.
  const data = await written.formData();
  const fields: [string, string][] = [];
  const files: [string, string, string, Buffer][] = [];
  for (const [name, value] of data.entries()) {
    if (typeof value === "string") fields.push([name, value]);
    else files.push([name, value.name, value.type, Buffer.from(await value.arrayBuffer())]);
  }
  return { fields, files };
}

async function failure(input: Buffer, rules: FormRules = PASS, max?: number): Promise<FormError> {
  const form = new FormRewriter(BOUNDARY, rules, max);
  await expect(readBytes(Readable.from([input]).pipe(form))).rejects.toBeInstanceOf(FormError);
  return form.failure!;
}

const BODY = formBody([
  { name: "model", value: "whisper-1" },
  { name: "file", filename: "a.wav", type: "audio/wav", data: FILE },
  { name: "timestamp_granularities[]", value: "word" },
  { name: "timestamp_granularities[]", value: "segment" },
  { name: "prompt", value: "héllo\r\n--not a boundary" },
]);

describe("boundaryOf", () => {
  it("reads a quoted or bare boundary of a form, nothing else", () => {
    expect(boundaryOf('multipart/form-data; boundary="a b"')).toBe("a b");
    expect(boundaryOf("Multipart/Form-Data;charset=utf-8; boundary=xyz")).toBe("xyz");
    expect(boundaryOf("multipart/mixed; boundary=xyz")).toBeUndefined();
    expect(boundaryOf("multipart/form-data")).toBeUndefined();
    expect(boundaryOf(`multipart/form-data; boundary=${"x".repeat(71)}`)).toBeUndefined();
    expect(boundaryOf(undefined)).toBeUndefined();
  });
});

describe("FormRewriter", () => {
  it("rebuilds the same form under a new boundary, however the input is split", async () => {
    const expected = await rewrite(BODY);
    expect(expected.fields).toEqual([
      ["model", "whisper-1"],
      ["timestamp_granularities[]", "word"],
      ["timestamp_granularities[]", "segment"],
      ["prompt", "héllo\r\n--not a boundary"],
    ]);
    expect(expected.files).toEqual([["file", "a.wav", "audio/wav", FILE]]);
    for (const size of [1, 2, 3, 5, 7, 13, 31, 64, 100])
      expect(await rewrite(BODY, PASS, size)).toEqual(expected);
  });

  it("writes what the rules say: fields replaced, dropped or added at the end", async () => {
    const rules: FormRules = {
      files: ["file"],
      field: (name, value) =>
        name === "model" ? [] : name === "prompt" ? [["prompt", value.toUpperCase()]] : [],
      end: () => [["response_format", "json"]],
    };
    expect((await rewrite(BODY, rules)).fields).toEqual([
      ["prompt", "HÉLLO\r\n--NOT A BOUNDARY"],
      ["response_format", "json"],
    ]);
  });

  it("skips the preamble, the epilogue, padding after a boundary, unnamed parts and unlisted files", async () => {
    const input = Buffer.concat([
      Buffer.from(`This is the preamble.\r\n--${BOUNDARY} \t\r\n`),
      Buffer.from('Content-Disposition: form-data; name="other"; filename="x.bin"\r\n\r\n'),
      FILE,
      Buffer.from(`\r\n--${BOUNDARY}\r\n\r\nno headers\r\n`),
      Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n`),
      Buffer.from(`--${BOUNDARY}--\r\nepilogue\r\n--${BOUNDARY}\r\n`),
    ]);
    for (const size of [1, 9, 4096])
      expect(await rewrite(input, PASS, size)).toEqual({ fields: [["model", "m"]], files: [] });
  });

  it("quotes names and cleans file names and types, so nothing can add a header", async () => {
    const input = Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a\\"b%0D%0AX-Evil: 1.wav"\r\n` +
        `Content-Type: audio/wav\r\nX-Evil: 1\r\n\r\nRIFF\r\n` +
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="a%22b"\r\n\r\nv\r\n--${BOUNDARY}--\r\n`,
    );
    const form = new FormRewriter(BOUNDARY, { files: ["file"], field: (n, v) => [[n, v]] });
    const out = (await readBytes(Readable.from([input]).pipe(form))).toString("latin1");
    expect(out).not.toContain("X-Evil: 1\r\n");
    expect(out).toContain('filename="abX-Evil: 1.wav"');
    expect(out).toContain('name="a%22b"');
    const bad = Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="f"\r\n` +
        `Content-Type: audio wav<b>\r\n\r\nRIFF\r\n--${BOUNDARY}--\r\n`,
    );
    expect((await rewrite(bad)).files[0]?.[2]).toBe("application/octet-stream");
  });

  it("refuses a truncated form, a missing boundary and an oversized field", async () => {
    expect((await failure(BODY.subarray(0, BODY.length - 10))).code).toBe("form_malformed");
    expect((await failure(Buffer.alloc(70_000, 0x61))).message).toMatch(/no opening boundary/);
    const big = formBody([{ name: "prompt", value: "x".repeat(100) }]);
    expect(await failure(big, PASS, 99)).toMatchObject({
      code: "form_field_too_large",
      message: 'form field "prompt" is longer than 99 bytes',
    });
  });

  it("refuses what the rules refuse, keeping their error", async () => {
    const rules: FormRules = {
      files: [],
      field: () => {
        throw new FormError("form_rejected", "no thanks");
      },
    };
    expect(await failure(BODY, rules)).toMatchObject({
      code: "form_rejected",
      message: "no thanks",
    });
  });
});
