import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The real-engine tier needs a built llama-server (`npm run test:real`); the long fault
    // tier takes minutes (`npm run test:long`); the package tier packs and installs (`npm run
    // test:pack`); the PostgreSQL tier needs a PostgreSQL server (`npm run test:pg`); the
    // browser tier needs Chromium (`npm run test:ui`).
    exclude: [
      "test/real/**",
      "test/long/**",
      "test/pack/**",
      "test/pg/**",
      "test/ui/**",
      "node_modules/**",
    ],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
  },
});
