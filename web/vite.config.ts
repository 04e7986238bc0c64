/// <reference types="vitest/config" />
import { readFileSync } from 'node:fs';
import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig, type Plugin } from 'vite';

// What /docs and /redoc load, copied from npm packages into the build: the API serves them, no CDN.
const VENDORED: Record<string, string> = {
  'vendor/swagger-ui/swagger-ui-bundle.js': 'swagger-ui-dist/swagger-ui-bundle.js',
  'vendor/swagger-ui/swagger-ui.css': 'swagger-ui-dist/swagger-ui.css',
  'vendor/redoc/redoc.standalone.js': 'redoc/bundles/redoc.standalone.js',
};

// ReDoc's side menu shows an image from Redocly's CDN: the copy served here points at the application's icon.
const REDOC_CDN_LOGO = 'https://cdn.redoc.ly/redoc/logo-mini.svg';

function offlineDocs(): Plugin {
  return {
    name: 'koprogo-offline-docs',
    apply: 'build',
    generateBundle() {
      for (const [fileName, module] of Object.entries(VENDORED)) {
        let source: string | Buffer = readFileSync(new URL(`./node_modules/${module}`, import.meta.url));
        if (module.startsWith('redoc/')) source = source.toString('utf8').replaceAll(REDOC_CDN_LOGO, '/favicon.svg');
        this.emitFile({ type: 'asset', fileName, source });
      }
    },
  };
}

export default defineConfig({
  plugins: [svelte(), offlineDocs()],
  build: {
    outDir: '../src/koprogo_iot/api/static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 400,
  },
  server: {
    // `npm run dev` beside `make up`: the API and its live stream stay on the platform's port.
    proxy: { '/api': { target: 'http://127.0.0.1:8000', ws: true } },
  },
  test: {
    include: ['src/**/*.spec.ts'],
    environment: 'node',
  },
});
