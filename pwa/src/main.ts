/** Entry point of the PWA: boot the app in this window and register the service worker. */
import "./ui/styles.css";
import { boot } from "./boot";
import type { SyncEngine } from "./sync/engine";
import type { SocketLike } from "./sync/push";

async function main(): Promise<void> {
  const root = document.getElementById("app");
  if (root === null) throw new Error("#app is missing from index.html");
  const { engine } = await boot({
    root,
    rawConfig: window.SYNCPIPE_CONFIG,
    location: window.location,
    storage: window.localStorage,
    fetch: (...args) => window.fetch(...args),
    openSocket: (url) => new WebSocket(url) as unknown as SocketLike,
    events: window,
    navigator,
    channel: "BroadcastChannel" in window ? (new BroadcastChannel("syncpipe") as never) : null,
    reload: () => window.location.reload(),
  });
  // For end-to-end tests and debugging from the console.
  (window as unknown as { syncpipe?: SyncEngine }).syncpipe = engine;

  if ("serviceWorker" in navigator && import.meta.env.PROD) {
    navigator.serviceWorker
      .register("./sw.js")
      .catch((err: unknown) => console.warn("service worker not registered", err));
  }
}

void main();
