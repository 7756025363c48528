// The page and its training worker, bundled from the packages' main entries (their `browser`
// export condition), with relative URLs so that the site works from any static host and folder.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: {
    target: 'es2022',
    outDir: 'dist',
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
    // The build takes seconds; the bundler's note on which plugin took them is noise in CI logs.
    rolldownOptions: { checks: { pluginTimings: false } },
  },
  worker: { format: 'es' },
});
