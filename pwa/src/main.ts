/** Composition root of the PWA: config, storage, engine, UI, service worker. */
import "./ui/styles.css";
import { DEV_TOKEN_KEY, loadConfig } from "./config";
import { webLock } from "./outbox/lock";
import { httpTransport } from "./outbox/transport";
import { IdbStore } from "./store/idb";
import { MemoryStore } from "./store/memory";
import type { Store } from "./store/types";
import { SyncEngine, type EngineOptions } from "./sync/engine";
import type { SocketLike } from "./sync/push";
import { App } from "./ui/app";
import { APP_VERSION, PROTOCOL_VERSION } from "./version";

async function openStore(): Promise<Store> {
  try {
    return await IdbStore.open("syncpipe");
  } catch (err) {
    // Private mode or a blocked database: run from memory rather than not at all.
    console.warn("IndexedDB unavailable, changes will not survive a reload", err);
    return new MemoryStore();
  }
}

async function main(): Promise<void> {
  const root = document.getElementById("app");
  if (root === null) throw new Error("#app is missing from index.html");
  const config = loadConfig(window.SYNCPIPE_CONFIG, window.location, window.localStorage);
  const store = await openStore();
  const channel = "BroadcastChannel" in window ? new BroadcastChannel("syncpipe") : null;
  const engine = await SyncEngine.open({
    store,
    transport: httpTransport({ apiBase: () => config.apiBase, token: () => config.token }),
    socketFactory: (url) => new WebSocket(url) as unknown as SocketLike,
    wsBase: () => config.wsBase,
    token: () => config.token,
    appVersion: APP_VERSION,
    protocol: PROTOCOL_VERSION,
    lock: webLock(),
    channel: channel as unknown as EngineOptions["channel"],
    browserOnline: () => navigator.onLine,
  });
  new App(root, engine, {
    tokenSource: config.tokenSource,
    saveToken: (token) => {
      window.localStorage.setItem(DEV_TOKEN_KEY, token);
      config.token = token;
      config.tokenSource = config.tokenSource === "config" ? "config" : "dev";
      engine.push?.stop();
      engine.push?.start();
      void engine.syncNow();
    },
    reload: () => window.location.reload(),
  });
  window.addEventListener("online", () => engine.setOnline(true));
  window.addEventListener("offline", () => engine.setOnline(false));
  engine.start();
  // For end-to-end tests and debugging in the console.
  (window as unknown as { syncpipe?: SyncEngine }).syncpipe = engine;

  if ("serviceWorker" in navigator && import.meta.env.PROD) {
    navigator.serviceWorker
      .register("./sw.js")
      .catch((err: unknown) => console.warn("service worker", err));
  }
}

void main();
