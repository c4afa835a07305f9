import { defineConfig } from "vitest/config";

/** The real-engine tier: `npm run test:real` (builds llama-server once, then runs these). */
export default defineConfig({
  test: {
    include: ["test/real/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    pool: "forks",
    fileParallelism: false,
  },
});
