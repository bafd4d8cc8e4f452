/** Wires the app together: config, storage, engine, UI, browser events. */
import { DEV_TOKEN_KEY, loadConfig, rememberedConfig, type AppConfig } from "./config";
import { webLock } from "./outbox/lock";
import { httpTransport } from "./outbox/transport";
import { IdbStore } from "./store/idb";
import { MemoryStore } from "./store/memory";
import type { Store } from "./store/types";
import { SyncEngine, type EngineOptions } from "./sync/engine";
import type { SocketFactory } from "./sync/push";
import { App } from "./ui/app";
import { APP_VERSION, PROTOCOL_VERSION } from "./version";

export interface BootEnv {
  root: HTMLElement;
  /** `window.SYNCPIPE_CONFIG` as set by /config.js. */
  rawConfig: Window["SYNCPIPE_CONFIG"];
  location: { protocol: string; host: string; origin: string };
  storage: Pick<Storage, "getItem" | "setItem"> | null;
  fetch: typeof fetch;
  openSocket: SocketFactory;
  /** Receives `online` / `offline` events (the window). */
  events: Pick<EventTarget, "addEventListener">;
  navigator: { onLine: boolean; locks?: unknown };
  channel: EngineOptions["channel"];
  reload(): void;
  dbName?: string;
}

async function openStore(name: string): Promise<Store> {
  try {
    return await IdbStore.open(name);
  } catch (err) {
    // Private mode or a blocked database: run from memory rather than not at all.
    console.warn("IndexedDB unavailable: changes will not survive a reload", err);
    return new MemoryStore();
  }
}

export async function boot(
  env: BootEnv,
): Promise<{ engine: SyncEngine; app: App; config: AppConfig }> {
  const raw = rememberedConfig(env.rawConfig, env.storage);
  const config = loadConfig(raw, env.location, env.storage);
  const store = await openStore(env.dbName ?? "syncpipe");
  const engine = await SyncEngine.open({
    store,
    transport: httpTransport({
      apiBase: () => config.apiBase,
      token: () => config.token,
      fetch: env.fetch,
    }),
    socketFactory: env.openSocket,
    wsBase: () => config.wsBase,
    token: () => config.token,
    appVersion: APP_VERSION,
    protocol: PROTOCOL_VERSION,
    lock: webLock(env.navigator as Parameters<typeof webLock>[0]),
    channel: env.channel,
    browserOnline: () => env.navigator.onLine,
  });
  const app = new App(env.root, engine, {
    tokenSource: config.tokenSource,
    saveToken: (token) => {
      env.storage?.setItem(DEV_TOKEN_KEY, token);
      config.token = token;
      if (config.tokenSource === "none") config.tokenSource = "dev";
      engine.push?.stop();
      engine.push?.start();
      void engine.syncNow();
    },
    reload: env.reload,
  });
  env.events.addEventListener("online", () => engine.setOnline(true));
  env.events.addEventListener("offline", () => engine.setOnline(false));
  engine.start();
  return { engine, app, config };
}
