/**
 * End-to-end tests (issue 6): the built PWA in Debian's Chromium against the real stack
 * (`uv run syncpipe dev`, started once by `e2e/global-setup.ts` on free ports).
 *
 * One worker: every test shares that stack and keeps to its own tasks (titles carry a
 * per-test tag). Browsers are never downloaded; CHROMIUM_PATH overrides the binary.
 */
import { defineConfig } from "@playwright/test";

export default defineConfig({
  testDir: "./e2e",
  outputDir: "./test-results/artifacts",
  globalSetup: "./e2e/global-setup.ts",
  fullyParallel: false,
  workers: 1,
  retries: 0,
  forbidOnly: Boolean(process.env.CI),
  timeout: 60_000,
  expect: { timeout: 15_000 },
  reporter: [["list"]],
  use: {
    browserName: "chromium",
    // Phone-sized: the app must work there (and the screenshots show that layout).
    viewport: { width: 390, height: 720 },
    headless: true,
    trace: "retain-on-failure",
    screenshot: "only-on-failure",
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    },
  },
});
