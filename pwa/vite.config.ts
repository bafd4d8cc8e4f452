/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import { readFileSync } from "node:fs";
import { serviceWorkerPlugin } from "./scripts/sw-plugin";

// The version push announces in `hello` is the syncpipe package's (pyproject.toml), so the
// build takes the same one; a mismatch at run time shows the "new version" banner.
function appVersion(): string {
  if (process.env.SYNCPIPE_APP_VERSION) return process.env.SYNCPIPE_APP_VERSION;
  try {
    const pyproject = readFileSync(new URL("../pyproject.toml", import.meta.url), "utf8");
    const project = pyproject.split(/^\[/m).find((s) => s.startsWith("project]"));
    const match = project?.match(/^version\s*=\s*"([^"]+)"/m);
    if (match?.[1]) return match[1];
  } catch {
    // building outside the repository: fall back to package.json
  }
  const pkg = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

// `npm run dev` proxies the API to the services `syncpipe dev` runs (ingest 8080, push 8081).
const ingest = process.env.SYNCPIPE_DEV_INGEST ?? "http://127.0.0.1:8080";
const push = process.env.SYNCPIPE_DEV_PUSH ?? "http://127.0.0.1:8081";

export default defineConfig({
  define: {
    __APP_VERSION__: JSON.stringify(appVersion()),
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
  },
  server: {
    proxy: {
      "/v1/ws": { target: push, ws: true, changeOrigin: true },
      "/v1": { target: ingest, changeOrigin: true },
    },
  },
  plugins: [serviceWorkerPlugin()],
  test: {
    environment: "node",
    include: ["src/**/*.test.ts", "scripts/**/*.test.ts"],
    restoreMocks: true,
  },
});
