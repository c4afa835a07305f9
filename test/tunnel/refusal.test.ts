/** What the daemon does with each status a relay may answer its connect request with. */
import { describe, expect, it } from "vitest";
import { classifyRefusal } from "../../src/tunnel/refusal.ts";

describe("classifyRefusal", () => {
  it("stops on a refused key, whatever the protocol", () => {
    for (const status of [401, 403])
      for (const protocol of [1, 2] as const)
        expect(classifyRefusal(status, protocol, "auto")).toBe("key");
  });

  it("falls back from protocol 2 under auto on the 4xx of an older relay or a proxy", () => {
    for (const status of [400, 404, 405, 408, 426])
      expect(classifyRefusal(status, 2, "auto")).toBe("fallback");
  });

  it("retries a full or starting relay on the same protocol", () => {
    for (const status of [429, 500, 502, 503])
      expect(classifyRefusal(status, 2, "auto")).toBe("retry");
    expect(classifyRefusal(404, 1, "auto")).toBe("retry");
  });

  it("stops on 426 when no fallback is left", () => {
    expect(classifyRefusal(426, 2, 2)).toBe("version");
    expect(classifyRefusal(426, 1, "auto")).toBe("version");
    expect(classifyRefusal(426, 1, 1)).toBe("version");
    expect(classifyRefusal(400, 2, 2)).toBe("retry");
  });
});
