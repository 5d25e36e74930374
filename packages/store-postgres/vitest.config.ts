import { defineConfig } from "vitest/config";

// The cluster tests share one PostgreSQL, and one of them cuts its own connections for seconds:
// files run one after another.
export default defineConfig({
  test: { testTimeout: 60_000, hookTimeout: 60_000, fileParallelism: false },
});
