import { defineConfig } from "vitest/config";

/**
 * The browser tier: `npm run test:ui`. Builds the pages' bundles (test/ui/build-setup.ts), then
 * drives both pages in headless Chromium (Debian's `chromium`, through playwright-core).
 */
export default defineConfig({
  test: {
    include: ["test/ui/**/*.test.ts"],
    globalSetup: ["test/ui/build-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
