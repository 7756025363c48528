// The page and its training worker, bundled from the packages' main entries (their `browser`
// export condition), with relative URLs so that the site works from any static host and folder.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  build: { target: 'es2022', outDir: 'dist', emptyOutDir: true, chunkSizeWarningLimit: 2000 },
  worker: { format: 'es' },
});
