import { describe, expect, it } from "vitest";
import { decodeInline, readForm, sniff, typeOfFile } from "../../adapters/kit/media.ts";
import type { DiscoveredModel } from "../../adapters/adapter.ts";
import { filePart, formCall } from "../fakes/comfyui-calls.ts";
import { fakePng } from "../fakes/comfyui-files.ts";

const model = { id: "m", servedId: "m" } as DiscoveredModel;

describe("media inputs", () => {
  it("reads a form whole, and refuses one past its limit or of another type", async () => {
    const parts = [{ name: "prompt", value: "hi" }, filePart("image", fakePng("x"))];
    const form = await readForm(formCall("/v1/images/edits", { url: "http://x" }, model, parts));
    expect(form.get("prompt")).toEqual(["hi"]);
    const big = [filePart("image", Buffer.alloc(100_000, 1))];
    await expect(
      readForm(formCall("/v1/images/edits", { url: "http://x" }, model, big), 10_000),
    ).rejects.toThrow("the form is larger than 10000 bytes");
    const json = { ...formCall("/v1/images/edits", { url: "http://x" }, model, parts) };
    json.headers = { "content-type": "application/json" };
    await expect(readForm(json)).rejects.toThrow("/v1/images/edits takes multipart/form-data");
  });

  it("decodes base64 and data: URLs, never a URL to fetch", () => {
    const png = fakePng("y");
    expect(decodeInline(png.toString("base64"), "image").equals(png)).toBe(true);
    expect(
      decodeInline(`data:image/png;base64,${png.toString("base64")}`, "image").equals(png),
    ).toBe(true);
    expect(() => decodeInline("https://169.254.169.254/x.png", "image")).toThrow(
      /neither a data: URL nor base64/,
    );
    expect(() => decodeInline("data:image/png,rawtext", "image")).toThrow(/only base64 data: URLs/);
    expect(() => decodeInline("QUJD", "image", 2)).toThrow('"image" is larger than 2 bytes');
  });

  it("tells images and clips by their first bytes, and files by their extension", () => {
    expect(sniff(fakePng("z"))).toEqual({ ext: "png", type: "image/png" });
    expect(sniff(Buffer.from("RIFF\0\0\0\0WAVEfmt "))).toEqual({ ext: "wav", type: "audio/wav" });
    expect(sniff(Buffer.from("GIF89a-not-taken"))).toBeUndefined();
    expect(typeOfFile("club/ltxv_00001_.mp4")).toBe("video/mp4");
    expect(typeOfFile("noext")).toBeUndefined();
  });
});
