import { describe, expect, it } from "vitest";
import { isPrivateAddress, unsafeImageUrl } from "../../src/gateway/safety.ts";

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
    "printer.local",
    "db.internal",
  ])("treats %s as private", (host) => expect(isPrivateAddress(host)).toBe(true));

  it.each(["8.8.8.8", "172.32.0.1", "192.169.0.1", "2001:4860::8888", "example.com"])(
    "treats %s as public",
    (host) => expect(isPrivateAddress(host)).toBe(false),
  );

  it("refuses image URLs aimed at the rig or its network, and odd schemes", () => {
    expect(unsafeImageUrl(chat("http://127.0.0.1:8080/props"))).toMatch(/local or private/);
    expect(unsafeImageUrl(chat("http://[::1]/x.png"))).toMatch(/local or private/);
    expect(unsafeImageUrl(chat("file:///etc/passwd"))).toMatch(/http\(s\) or data:/);
    expect(unsafeImageUrl(chat("not a url"))).toMatch(/not a URL/);
    expect(unsafeImageUrl(chat(42))).toMatch(/no url/);
  });

  it("accepts data: URIs, public URLs and plain text", () => {
    expect(unsafeImageUrl(chat("data:image/png;base64,iVBORw0KGgo="))).toBeUndefined();
    expect(unsafeImageUrl(chat("https://example.com/cat.png"))).toBeUndefined();
    expect(unsafeImageUrl({ messages: [{ role: "user", content: "hi" }] })).toBeUndefined();
    expect(unsafeImageUrl({})).toBeUndefined();
  });
});
