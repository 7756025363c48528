// Test projects: one per package and app, plus `gpu` for *.gpu.test.ts (big shapes and
// features a software adapter lacks), which CI does not run. Workspace packages resolve to
// their sources, so tests need no build.
import { readdirSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const members = ['packages', 'apps'].flatMap((group) =>
  readdirSync(`${root}${group}`)
    .filter((name) => existsSync(`${root}${group}/${name}/package.json`))
    .map((name) => ({ name, dir: `${group}/${name}` })),
);

// `@peft-ts/x` -> packages/x/src/index.ts and `@peft-ts/x/sub` -> packages/x/src/sub/index.ts,
// except that a Node-only entry written as packages/x/src/node.ts serves `@peft-ts/x/node`.
const alias = [
  ...members
    .filter(({ dir }) => existsSync(`${root}${dir}/src/node.ts`))
    .map(({ name, dir }) => ({ find: new RegExp(`^@peft-ts/${name}/node$`), replacement: `${root}${dir}/src/node.ts` })),
  {
    find: /^@peft-ts\/([a-z0-9-]+)\/([a-z0-9-]+)$/,
    replacement: `${root}packages/$1/src/$2/index.ts`,
  },
  { find: /^@peft-ts\/([a-z0-9-]+)$/, replacement: `${root}packages/$1/src/index.ts` },
];

export default defineConfig({
  test: {
    reporters: ['default', `${root}tools/summary-reporter.ts`],
    // Vitest's default (one worker fewer than the cores) leaves a 2-core machine running the files
    // one at a time; most of a file's time is single-threaded (imports, tokenizers, host work), so
    // two workers finish the suite about 1.5x sooner there even though they share the cores.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      ...members.map(({ name, dir }) => ({
        resolve: { alias },
        test: {
          name,
          root: `${root}${dir}`,
          include: ['src/**/*.test.ts'],
          exclude: ['src/**/*.gpu.test.ts', '**/node_modules/**'],
          pool: 'forks' as const,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      })),
      {
        // The repository's own scripts (tools/*.mjs).
        test: {
          name: 'tools',
          root: `${root}tools`,
          include: ['**/*.test.mjs'],
          pool: 'forks' as const,
          testTimeout: 120_000,
        },
      },
      {
        resolve: { alias },
        test: {
          name: 'gpu',
          root,
          include: ['packages/*/src/**/*.gpu.test.ts', 'apps/*/src/**/*.gpu.test.ts'],
          pool: 'forks' as const,
          testTimeout: 600_000,
        },
      },
    ],
  },
});
