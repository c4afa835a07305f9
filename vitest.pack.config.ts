import { defineConfig } from "vitest/config";

/**
 * The package tier: `npm run test:pack` (about a minute). Packs this checkout, installs the
 * tarball into a throwaway prefix and runs the installed CLI.
 */
export default defineConfig({
  test: {
    include: ["test/pack/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 300_000,
    pool: "forks",
  },
});
