/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import { readFileSync } from "node:fs";
import { serviceWorkerPlugin } from "./scripts/sw-plugin";

const pkg = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as {
  version: string;
};

// The backend (ingest + push) during `npm run dev`; the built app is served by `syncpipe dev`.
const backend = process.env.SYNCPIPE_DEV_BACKEND ?? "http://127.0.0.1:8000";

export default defineConfig({
  define: {
    __APP_VERSION__: JSON.stringify(pkg.version),
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
  },
  server: {
    proxy: {
      "/v1": { target: backend, ws: true, changeOrigin: true },
      "/config.js": { target: backend, changeOrigin: true },
    },
  },
  plugins: [serviceWorkerPlugin()],
  test: {
    environment: "node",
    include: ["src/**/*.test.ts"],
    restoreMocks: true,
  },
});
