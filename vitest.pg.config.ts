import { defineConfig } from "vitest/config";

/**
 * The PostgreSQL tier: `npm run test:pg`. Starts a throwaway PostgreSQL cluster on loopback
 * (test/pg/global-setup.ts) or uses `CLUB_TEST_PG_URL`; several relays share it.
 */
export default defineConfig({
  test: {
    include: ["test/pg/**/*.test.ts"],
    globalSetup: ["test/pg/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
