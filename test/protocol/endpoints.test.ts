import { describe, expect, it } from "vitest";
import { stripClubFields } from "../../src/protocol/index.ts";

describe("stripClubFields", () => {
  it("takes the club's fields out of a copy, leaving the caller's body as it was", () => {
    const body = { model: "m", visibility: "PUBLIC", collection: "c", async: true, n: 1 };
    expect(stripClubFields(body)).toEqual({ model: "m", n: 1 });
    expect(body).toEqual({ model: "m", visibility: "PUBLIC", collection: "c", async: true, n: 1 });
    for (const field of ["visibility", "collection", "async"]) {
      const one = { model: "m", [field]: undefined };
      expect(Object.keys(stripClubFields(one))).toEqual(["model"]);
    }
  });

  it("gives a body without them back as it is", () => {
    const body = { model: "m", messages: [] };
    expect(stripClubFields(body)).toBe(body);
  });
});
