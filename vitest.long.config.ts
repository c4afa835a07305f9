import { defineConfig } from "vitest/config";

/**
 * The long fault tier: `npm run test:long` (about 6 min). Each file waits out a fault in real
 * time (five minutes of silence, a 100 MB body read at 1 MB/s), so the files run side by side.
 */
export default defineConfig({
  test: {
    include: ["test/long/**/*.test.ts"],
    testTimeout: 480_000,
    hookTimeout: 60_000,
    pool: "forks",
    // One worker per file even on a 2-core machine: the tests mostly wait.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
