/**
 * Builds the two pages' browser code (src/ui/browser) into `dist/ui/`: one minified bundle per
 * page and one stylesheet, each named by a hash of its content so it can be cached for good,
 * and `manifest.json`, which maps `rig.js`, `club.js` and `style.css` to those names. Runs at
 * `npm run build` (and so at `prepack`); nothing is bundled at run time.
 * @example
 * node src/ui/build.ts            # writes dist/ui/
 */
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { build } from "esbuild";

const ROOT = resolve(import.meta.dirname, "../..");
const SOURCE = join(ROOT, "src", "ui", "browser");

/** The bundles, by the name the servers ask for. */
export const ENTRIES = { "rig.js": "rig.ts", "club.js": "club.ts", "style.css": "style.css" };

/** Builds into `outDir` (default `dist/ui`); answers the manifest it wrote. */
export async function buildUi(outDir = join(ROOT, "dist", "ui")): Promise<Record<string, string>> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const result = await build({
    entryPoints: Object.values(ENTRIES).map((f) => join(SOURCE, f)),
    outdir: outDir,
    entryNames: "[name]-[hash]",
    bundle: true,
    minify: true,
    format: "esm",
    target: ["es2022"],
    metafile: true,
    legalComments: "none",
    logLevel: "warning",
  });
  const manifest: Record<string, string> = {};
  for (const [out, meta] of Object.entries(result.metafile.outputs)) {
    const entry = meta.entryPoint ? basename(meta.entryPoint) : undefined;
    const name = Object.entries(ENTRIES).find(([, source]) => source === entry)?.[0];
    if (name) manifest[name] = basename(out);
  }
  const missing = Object.keys(ENTRIES).filter((n) => !manifest[n]);
  if (missing.length) throw new Error(`ui build: no output for ${missing.join(", ")}`);
  writeFileSync(join(outDir, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const outDir = process.argv[2] ? resolve(process.argv[2]) : undefined;
  const manifest = await buildUi(outDir);
  const dir = outDir ?? join(ROOT, "dist", "ui");
  // stderr: `npm pack --json` runs this at prepack and its stdout must stay JSON.
  process.stderr.write(
    `ui: ${readdirSync(dir).length - 1} assets in ${dir}: ${Object.values(manifest).join(", ")}\n`,
  );
}
