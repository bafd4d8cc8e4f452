// Builds the app into a temporary folder and checks what the service worker precaches.
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "vite";
import { afterAll, describe, expect, it } from "vitest";

const outDir = mkdtempSync(join(tmpdir(), "syncpipe-pwa-build-"));

afterAll(() => rmSync(outDir, { recursive: true, force: true }));

describe("the production build", () => {
  it("emits a service worker that precaches exactly this build's app shell", async () => {
    await build({
      root: join(__dirname, ".."),
      logLevel: "silent",
      build: { outDir, emptyOutDir: true },
    });
    const sw = readFileSync(join(outDir, "sw.js"), "utf8");
    const precache = JSON.parse(/const PRECACHE = (\[.*?\]);/.exec(sw)?.[1] ?? "null") as string[];
    const assets = readdirSync(join(outDir, "assets")).map((f) => `./assets/${f}`);
    expect(precache).toEqual(
      expect.arrayContaining([
        "./",
        "./manifest.webmanifest",
        "./icon.svg",
        "./icon-192.png",
        ...assets,
      ]),
    );
    expect(sw).toMatch(/const CACHE = "syncpipe-shell-" \+ "[0-9a-f]{12}";/);
    expect(sw).not.toContain("__PRECACHE__");
    const manifest = JSON.parse(readFileSync(join(outDir, "manifest.webmanifest"), "utf8"));
    expect(manifest).toMatchObject({ display: "standalone", start_url: "./" });
    for (const icon of manifest.icons as { src: string }[]) {
      expect(precache).toContain(`./${icon.src}`); // every icon exists offline too
      expect(readdirSync(outDir)).toContain(icon.src);
    }
    const html = readFileSync(join(outDir, "index.html"), "utf8");
    expect(html).toContain('<script src="./config.js"></script>');
    expect(html).toContain('rel="manifest"');
  }, 60_000);
});
