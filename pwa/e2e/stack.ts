/**
 * The real stack for the end-to-end tests: `uv run syncpipe dev` from the repository root
 * on free ports, its data kept under `test-results/`. Started once by the global setup;
 * the tests read where it listens from the environment (`E2E_*`, see {@link stackFromEnv}).
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createWriteStream, rmSync } from "node:fs";
import { createServer } from "node:net";

export interface StackInfo {
  /** The PWA, with its /config.js (`http://127.0.0.1:PORT/`). */
  appUrl: string;
  /** ingest's base URL (`http://127.0.0.1:PORT`). */
  ingestUrl: string;
  /** The dev tenant's token that /config.js hands the app. */
  token: string;
}

export interface RunningStack extends StackInfo {
  stop(): Promise<void>;
}

const READY = "syncpipe dev is up";

/** A TCP port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        reject(new Error("no port from the OS"));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** `npm run build` in `pwaDir`, so the stack serves the code under test. */
export function buildPwa(pwaDir: string): void {
  const result = spawnSync("npm", ["run", "build"], { cwd: pwaDir, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`npm run build failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
}

function line(output: string, name: string): string {
  const match = output.match(new RegExp(`^\\s+${name}\\s+(\\S+)\\s*$`, "m"));
  if (!match?.[1]) throw new Error(`syncpipe dev printed no '${name}' line:\n${output}`);
  return match[1];
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/**
 * Start `uv run syncpipe dev` in `repoRoot` and resolve once it prints that it is up.
 * Its output goes to `logFile` (and into the error if it never comes up). Its data dir is
 * `${logFile}.data/` (broker log, Redis data, the components' logs in `logs/`): emptied
 * when the stack starts and kept after it stops, so a failed run's topics can be read
 * back (`syncpipe replay dump`).
 */
export async function startStack(
  repoRoot: string,
  logFile: string,
  readyTimeoutMs = 180_000,
): Promise<RunningStack> {
  const dataDir = `${logFile}.data`;
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(`${logFile}.d`, { recursive: true, force: true }); // where older runs kept the logs
  const env: NodeJS.ProcessEnv = {};
  // Like tests/syncpipe/test_dev.py: none of the caller's SYNCPIPE_* settings leak in.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SYNCPIPE_")) env[k] = v;
  for (const name of ["kafka", "redis", "ingest", "push", "pwa"]) {
    env[`SYNCPIPE_DEV_${name.toUpperCase()}_PORT`] = String(await freePort());
  }
  env.SYNCPIPE_DEV_DATA_DIR = dataDir;

  // Its own process group, so the deadline kill reaches every component.
  const child = spawn("uv", ["run", "syncpipe", "dev"], {
    cwd: repoRoot,
    env,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = createWriteStream(logFile);
  let output = "";
  const collect = (chunk: Buffer): void => {
    output += chunk.toString("utf8");
    log.write(chunk);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);

  const closed = new Promise<void>((resolve) => child.once("close", () => resolve()));

  const stop = async (): Promise<void> => {
    if (!exited(child) && child.pid !== undefined) {
      child.kill("SIGINT"); // uv passes it on; syncpipe dev stops every component
      const deadline = new Promise<"late">((r) => setTimeout(() => r("late"), 30_000).unref());
      if ((await Promise.race([closed.then(() => "closed" as const), deadline])) === "late") {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          /* already gone */
        }
        await closed;
      }
    }
    log.end();
  };

  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`syncpipe dev not up in ${readyTimeoutMs} ms:\n${output}`)),
        readyTimeoutMs,
      );
      const check = (): void => {
        if (output.includes(READY)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout?.on("data", check);
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`syncpipe dev exited (${code ?? signal}) before it was up:\n${output}`));
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    return {
      appUrl: line(output, "app"),
      ingestUrl: line(output, "ingest"),
      token: line(output, "token"),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export function exportStack(info: StackInfo): void {
  process.env.E2E_APP_URL = info.appUrl;
  process.env.E2E_INGEST_URL = info.ingestUrl;
  process.env.E2E_TOKEN = info.token;
}

/** The stack the global setup started (its env vars reach every worker). */
export function stackFromEnv(): StackInfo {
  const { E2E_APP_URL, E2E_INGEST_URL, E2E_TOKEN } = process.env;
  if (!E2E_APP_URL || !E2E_INGEST_URL || !E2E_TOKEN) {
    throw new Error("E2E_APP_URL/E2E_INGEST_URL/E2E_TOKEN unset: run through `npm run e2e`");
  }
  return { appUrl: E2E_APP_URL, ingestUrl: E2E_INGEST_URL, token: E2E_TOKEN };
}
