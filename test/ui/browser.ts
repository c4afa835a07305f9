/**
 * Headless Chromium for the browser tier: Debian's `chromium` (`/usr/bin/chromium`, or
 * `CLUB_CHROMIUM`) driven by playwright-core. Without it the tier is skipped loudly, except
 * under CI (`CI` set), where a missing browser fails it: `.ci/run` installs the package.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
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

/** What a first load of a page costs: bytes of every response, and time to first paint. */
export interface PageWeight {
  /** Bytes of the HTML, scripts and styles of a first load (no cache). */
  bytes: number;
  /** The same bodies gzipped (the servers send them as they are; a proxy may compress). */
  gzipBytes: number;
  files: number;
  /** Median first contentful paint over the loads, ms after navigation start. */
  firstPaintMs: number;
  /**
   * Median time the page's script had rendered it, ms after navigation start: the end of
   * DOMContentLoaded, which a module script (and so its synchronous first render) precedes.
   */
  renderedMs: number;
}

/** Loads `url` `loads` times in fresh contexts (cold cache) and measures each first load. */
export async function measure(browser: Browser, url: string, loads = 5): Promise<PageWeight> {
  const paints: number[] = [];
  const rendered: number[] = [];
  let weight = { bytes: 0, gzipBytes: 0, files: 0 };
  for (let i = 0; i < loads; i++) {
    const context = await browser.newContext();
    const tab = await context.newPage();
    const bodies: Promise<Buffer>[] = [];
    tab.on("response", (r) => {
      // The first load: the page and its assets, not its live stream (which never ends).
      const stream = r.headers()["content-type"]?.startsWith("text/event-stream") === true;
      if (new URL(r.url()).origin === new URL(url).origin && !stream) bodies.push(r.body());
    });
    await tab.goto(url, { waitUntil: "load" });
    const paint = await tab.evaluate(async () => {
      for (;;) {
        const entry = performance.getEntriesByName("first-contentful-paint")[0];
        if (entry) return entry.startTime;
        await new Promise((r) => requestAnimationFrame(r));
      }
    });
    paints.push(paint);
    rendered.push(
      await tab.evaluate(
        () =>
          (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming | undefined)
            ?.domContentLoadedEventEnd ?? 0,
      ),
    );
    const all = await Promise.all(bodies);
    weight = {
      bytes: all.reduce((n, b) => n + b.length, 0),
      gzipBytes: all.reduce((n, b) => n + gzipSync(b).length, 0),
      files: all.length,
    };
    await context.close();
  }
  const median = (values: number[]): number =>
    Math.round(values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0);
  return { ...weight, firstPaintMs: median(paints), renderedMs: median(rendered) };
}

const AXE_SOURCE = readFileSync(
  createRequire(import.meta.url).resolve("axe-core/axe.min.js"),
  "utf8",
);

/** One rule axe-core found broken, with the elements that break it. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/**
 * Runs axe-core (WCAG 2 A and AA rules) on the page as it is now and answers the serious and
 * critical violations. The source is evaluated through the debugger protocol, which the
 * pages' Content-Security-Policy does not govern, so the pages need no exception for it.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate(async () => {
    const axe = (
      window as unknown as {
        axe: {
          run(
            context: Document,
            options: unknown,
          ): Promise<{
            violations: {
              id: string;
              impact: string | null;
              help: string;
              nodes: { target: unknown[] }[];
            }[];
          }>;
        };
      }
    ).axe;
    const result = await axe.run(document, {
      runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.map((n) => n.target.map(String).join(" ")),
    }));
  });
  const grave = (v: AxeViolation): boolean => v.impact === "serious" || v.impact === "critical";
  // The lesser ones do not fail a test, but are shown.
  for (const v of found.filter((x) => !grave(x)))
    process.stdout.write(
      `axe (${v.impact ?? "?"}) ${page.url()}: ${v.id}: ${v.help}: ${v.targets.join(", ")}\n`,
    );
  return found.filter(grave);
}

/** Presses Tab until `matches` holds for the focused element (at most `limit` presses). */
export async function tabTo(
  page: Page,
  matches: () => Promise<boolean>,
  limit = 60,
): Promise<number> {
  for (let presses = 1; presses <= limit; presses++) {
    await page.keyboard.press("Tab");
    if (await matches()) return presses;
  }
  throw new Error(`no element matched after ${limit} presses of Tab`);
}
