import { describe, expect, it } from "vitest";
import { fetchedUrls, isPrivateAddress, unsafeRequestUrl } from "../../src/gateway/safety.ts";
import type { Resolver } from "../../src/gateway/url-guard.ts";

/** A resolver with fixed answers, so no test needs DNS. */
const resolve: Resolver = (host) => {
  const answers: Record<string, string[]> = {
    "example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "rebind.example": ["93.184.215.14", "10.0.0.1"],
  };
  const found = answers[host];
  return found ? Promise.resolve(found) : Promise.reject(new Error(`ENOTFOUND ${host}`));
};
const check = (body: Record<string, unknown>) => unsafeRequestUrl(body, { resolve });

const chat = (url: unknown) => ({
  messages: [
    {
      role: "user",
      content: [
        { type: "text", text: "look" },
        { type: "image_url", image_url: { url } },
      ],
    },
  ],
});

describe("request safety", () => {
  it.each([
    "localhost",
    "127.0.0.1",
    "127.8.9.1",
    "10.0.0.5",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.20",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "[::1]",
    "::",
    "fd00::1",
    "fe80::1",
    "::ffff:10.0.0.1",
    "[::ffff:7f00:1]",
    "[::ffff:a00:1]",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::10.1.2.3",
    "2002:c0a8:0101::1",
    "2002:7f00:1::",
    "ff02::1",
    "2130706433",
    "0x7f.1",
    "0177.0.0.1",
    "127.1",
    "printer.local",
    "db.internal",
    "nas.lan",
    "printer",
  ])("treats %s as private", (host) => expect(isPrivateAddress(host)).toBe(true));

  it.each([
    "8.8.8.8",
    "172.32.0.1",
    "192.169.0.1",
    "2001:4860::8888",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "example.com",
  ])("treats %s as public", (host) => expect(isPrivateAddress(host)).toBe(false));

  it("refuses image URLs aimed at the rig or its network, and odd schemes", async () => {
    expect(await check(chat("http://127.0.0.1:8080/props"))).toMatch(/local or private/);
    expect(await check(chat("http://[::1]/x.png"))).toMatch(/local or private/);
    expect(await check(chat("file:///etc/passwd"))).toMatch(/http\(s\) or data:/);
    expect(await check(chat("not-a-url"))).toMatch(/not a URL/);
    expect(await check(chat(42))).toMatch(/no url/);
  });

  it.each([
    ["http://[::ffff:127.0.0.1]/x.png", /local or private/],
    ["http://[::ffff:10.0.0.1]/x.png", /local or private/],
    ["http://[::ffff:7f00:1]/x.png", /local or private/],
    ["http://[0:0:0:0:0:ffff:127.0.0.1]/", /local or private/],
    ["http://[64:ff9b::a9fe:a9fe]/latest/meta-data", /local or private/],
    ["http://[2002:a9fe:a9fe::]/", /local or private/],
    ["http://2130706433/", /local or private/],
    ["http://0x7f.1/", /local or private/],
    ["http://0177.0.0.1/", /local or private/],
    ["http://127.1/", /local or private/],
    ["http://127.0.0.1./", /local or private/],
    ["http://localhost:8080/", /local or private/],
    ["http://foo.localhost/", /local or private/],
    ["http://LOCALHOST/", /local or private/],
    ["http://example.com\\@127.0.0.1/", /backslash/],
    ["http://user@example.com/x.png", /user info/],
    ["http://example.com@127.0.0.1/", /user info/],
    ["http://%31%32%37.0.0.1/", /percent-encoded/],
    ["http://exa mple.com/", /whitespace/],
    [" http://127.0.0.1/", /whitespace/],
    ["http://example.com/\n", /control/],
    ["http://127。0。0。1/", /non-ASCII/],
    ["http:/127.0.0.1/", /scheme:\/\/host/],
    ["http:example.com", /scheme:\/\/host/],
    ["http://0x08.8.8.8/", /dotted decimal/],
    ["http://1.2.3.4.5/", /not a URL/],
    ["http://example.123/", /not a URL/],
    ["http://example.com:99999/", /invalid port/],
    ["http://rebind.example/x.png", /resolves to 10\.0\.0\.1/],
    ["http://nowhere.example/x.png", /does not resolve/],
    ["gopher://example.com/", /http\(s\) or data:/],
  ])("refuses %s", async (url, reason) => {
    expect(await check(chat(url))).toMatch(reason);
  });

  it("checks video, audio and other media parts, and the file fields of media endpoints", async () => {
    const part = (p: Record<string, unknown>) => ({ messages: [{ role: "user", content: [p] }] });
    expect(
      await check(part({ type: "video_url", video_url: { url: "http://[::ffff:7f00:1]/v.mp4" } })),
    ).toMatch(/^video_url: .*local or private/);
    expect(await check(part({ type: "audio_url", audio_url: "http://10.0.0.2/a.wav" }))).toMatch(
      /local or private/,
    );
    expect(
      await check(
        part({ type: "input_audio", input_audio: { data: "http://127.0.0.1/a", format: "wav" } }),
      ),
    ).toMatch(/local or private/);
    expect(await check(part({ type: "video_url" }))).toMatch(/video_url part has no url/);
    for (const field of ["image", "image_url", "url", "mask", "init_image", "input_reference"])
      expect(await check({ prompt: "a cat", [field]: "http://169.254.169.254/" }), field).toMatch(
        new RegExp(`^${field}: .*local or private`),
      );
    expect(await check({ images: ["https://example.com/a.png", "http://0x7f.1/"] })).toMatch(
      /local or private/,
    );
    expect(await check({ image: { url: "http://2130706433/" } })).toMatch(/local or private/);
  });

  it("accepts data: URIs, base64, public URLs and plain text", async () => {
    expect(await check(chat("data:image/png;base64,iVBORw0KGgo="))).toBeUndefined();
    expect(await check(chat("https://example.com/cat.png"))).toBeUndefined();
    expect(await check(chat("https://93.184.215.14:8443/cat.png?size=2#x"))).toBeUndefined();
    expect(await check(chat("http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/"))).toBeUndefined();
    expect(
      await check({ image: "/9j/4AAQSkZJRg==", prompt: "http://127.0.0.1/ in a prompt" }),
    ).toBeUndefined();
    expect(
      await check({
        messages: [
          { role: "assistant", content: [{ type: "refusal", refusal: "Sorry: no" }] },
          { role: "user", content: "see http://127.0.0.1/" },
        ],
      }),
    ).toBeUndefined();
    expect(await check({})).toBeUndefined();
  });

  it("bounds how many URLs one request may name", async () => {
    const many = Array.from({ length: 40 }, (_, i) => `https://example.com/${i}.png`);
    expect(fetchedUrls({ images: many })).toHaveProperty("size", 40);
    expect(await check({ images: many })).toMatch(/40 URLs/);
  });
});
