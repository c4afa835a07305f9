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
    // `expect.poll` waits for a condition; on a busy 2-core machine a daemon's reload can take
    // seconds, so it waits up to 10 s rather than vitest's default 1 s (never a timed assertion).
    expect: { poll: { timeout: 10_000 } },
    pool: "forks",
  },
});
