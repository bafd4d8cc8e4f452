// Emits dist/sw.js from sw/sw.js with the build's app-shell file list and a cache name
// derived from it, so every build precaches exactly its own hashed assets and a new
// build replaces the old cache.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Plugin } from "vite";

export function serviceWorkerPlugin(): Plugin {
  return {
    name: "syncpipe-service-worker",
    apply: "build",
    generateBundle(_options, bundle) {
      const files = Object.keys(bundle)
        .filter((f) => !f.endsWith(".map"))
        .map((f) => `./${f}`);
      const icons = ["icon.svg", "icon-192.png", "icon-512.png", "icon-maskable-512.png"];
      const publicFiles = ["./manifest.webmanifest", ...icons.map((i) => `./${i}`)];
      const shell = ["./", ...publicFiles, ...files].sort();
      const version = createHash("sha256").update(shell.join("\n")).digest("hex").slice(0, 12);
      const template = readFileSync(new URL("../sw/sw.js", import.meta.url), "utf8");
      const source = template
        .replace("__PRECACHE__", JSON.stringify(shell))
        .replace("__CACHE_VERSION__", JSON.stringify(version));
      this.emitFile({ type: "asset", fileName: "sw.js", source });
    },
  };
}
