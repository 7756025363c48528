// The page's end-to-end test in headless Chromium: run after the build, on its own (one
// browser and one training at a time), by `pnpm --filter @peft-ts/web test:browser`.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 420_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
