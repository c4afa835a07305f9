/** The accessibility check itself: axe-core runs in the page and reports what is broken. */
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HAVE_CHROMIUM, axeViolations, launch } from "./browser.ts";

describe.skipIf(!HAVE_CHROMIUM)("the accessibility check", () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launch();
  });
  afterAll(async () => {
    await browser.close();
  });

  it("finds an unlabelled button, faint text and a picture without words", async () => {
    const tab = await browser.newPage();
    await tab.setContent(
      `<!doctype html><html lang="en"><head><title>t</title></head><body><main>` +
        `<button></button><p style="color:#bbb;background:#fff">faint</p>` +
        `<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">` +
        `</main></body></html>`,
    );
    const ids = (await axeViolations(tab)).map((v) => v.id).sort();
    expect(ids).toEqual(["button-name", "color-contrast", "image-alt"]);
    await tab.close();
  });
});
