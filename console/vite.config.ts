import { fileURLToPath } from 'node:url';
import preact from '@preact/preset-vite';
import { defineConfig } from 'vite';

// The operator's console: a static bundle the API serves at /console (same origin as /api).
const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/console/',
  plugins: [preact()],
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // Everything is bundled and offline; no inline scripts or data: URLs, so a strict CSP holds.
    assetsInlineLimit: 0,
    sourcemap: true,
  },
});
