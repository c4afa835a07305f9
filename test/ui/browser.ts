/**
 * Headless Chromium for the browser tier: Debian's `chromium` (`/usr/bin/chromium`, or
 * `CLUB_CHROMIUM`) driven by playwright-core. Without it the tier is skipped loudly, except
 * under CI (`CI` set), where a missing browser fails it: `.ci/run` installs the package.
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { expect } from "vitest";

export const CHROMIUM = process.env.CLUB_CHROMIUM ?? "/usr/bin/chromium";
export const HAVE_CHROMIUM = existsSync(CHROMIUM);

if (!HAVE_CHROMIUM) {
  if (process.env.CI) throw new Error(`the browser tier needs Chromium at ${CHROMIUM} under CI`);
  process.stderr.write(
    `\n*** SKIPPING the browser tier: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CLUB_CHROMIUM) ***\n\n`,
  );
}

/** Where screenshots go: `CLUB_UI_SCREENSHOTS`, else a folder under the system's temp dir. */
export const SCREENSHOTS = process.env.CLUB_UI_SCREENSHOTS ?? join(tmpdir(), "club-ui-screenshots");

export async function launch(): Promise<Browser> {
  // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
}

/** Collects a page's console errors and uncaught exceptions. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(`${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => errors.push(e.message));
  return errors;
}

/**
 * Writes a full-page screenshot to SCREENSHOTS/name.png and checks that it is not blank: drawn
 * back onto a canvas in a fresh page, it must hold many colours and dark (text) pixels.
 */
export async function screenshot(browser: Browser, page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const png = await page.screenshot({ fullPage: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  writeFileSync(path, png);
  const probe = await browser.newPage();
  try {
    const stats = await probe.evaluate(async (b64: string) => {
      const img = new Image();
      img.src = `data:image/png;base64,${b64}`;
      await img.decode();
      const canvas = document.createElement("canvas");
      canvas.width = img.width;
      canvas.height = img.height;
      const ctx = canvas.getContext("2d");
      if (!ctx) return { colours: 0, dark: 0, width: 0 };
      ctx.drawImage(img, 0, 0);
      const data = ctx.getImageData(0, 0, img.width, img.height).data;
      const colours = new Set<number>();
      let dark = 0;
      for (let i = 0; i < data.length; i += 4) {
        const [r = 0, g = 0, b = 0] = [data[i], data[i + 1], data[i + 2]];
        colours.add((r << 16) | (g << 8) | b);
        if (r + g + b < 150) dark++;
      }
      return { colours: colours.size, dark, width: img.width };
    }, png.toString("base64"));
    expect(stats.width).toBeGreaterThan(0);
    expect(stats.colours, `${path} looks blank`).toBeGreaterThan(20);
    expect(stats.dark, `${path} has no text`).toBeGreaterThan(500);
  } finally {
    await probe.close();
  }
  return path;
}
