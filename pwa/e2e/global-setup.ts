/**
 * Builds the PWA (so the stack serves the code under test), starts one `syncpipe dev` for
 * the whole run and returns its teardown. The stack's output goes to
 * test-results/syncpipe-dev.log.
 */
import { mkdirSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { buildPwa, exportStack, startStack } from "./stack";

const pwaDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
export const SCREENSHOTS = join(pwaDir, "test-results", "screenshots");

export default async function globalSetup(): Promise<() => Promise<void>> {
  buildPwa(pwaDir);
  rmSync(SCREENSHOTS, { recursive: true, force: true });
  mkdirSync(SCREENSHOTS, { recursive: true });
  const stack = await startStack(
    resolve(pwaDir, ".."),
    join(pwaDir, "test-results", "syncpipe-dev.log"),
  );
  exportStack(stack);
  return () => stack.stop();
}
