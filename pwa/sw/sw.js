/* syncpipe app-shell service worker (template; the build fills in the file list).
 *
 * - install: precache the app shell (index.html, hashed assets, manifest, icon).
 * - navigations: network first, falling back to the cached shell when offline.
 * - same-origin static GETs: cache first (hashed names never change).
 * - /v1/* (ingest, push) and /config.js: never served from the precache; config.js is
 *   network first with the last good copy as fallback so the app starts offline.
 */
const PRECACHE = __PRECACHE__;
const CACHE = "syncpipe-shell-" + __CACHE_VERSION__;
const RUNTIME = "syncpipe-runtime";

self.addEventListener("install", (event) => {
  event.waitUntil(
    Promise.all([
      caches.open(CACHE).then((c) => c.addAll(PRECACHE)),
      // The backend's /config.js, so the app starts offline with the same backend and
      // token (refreshed on every online load below). Missing config.js is fine.
      caches
        .open(RUNTIME)
        .then((c) => c.add("./config.js"))
        .catch(() => undefined),
    ]),
  );
  self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) =>
        Promise.all(
          keys
            .filter((k) => k.startsWith("syncpipe-shell-") && k !== CACHE)
            .map((k) => caches.delete(k)),
        ),
      )
      .then(() => self.clients.claim()),
  );
});

async function networkFirst(request, cacheName, fallbackUrl) {
  try {
    const response = await fetch(request);
    if (response.ok) {
      const cache = await caches.open(cacheName);
      await cache.put(fallbackUrl ?? request, response.clone());
    }
    return response;
  } catch (err) {
    const cached = await caches.match(fallbackUrl ?? request);
    if (cached) return cached;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/v1/")) return;
  if (request.mode === "navigate") {
    event.respondWith(networkFirst(request, CACHE, "./"));
    return;
  }
  if (url.pathname.endsWith("/config.js")) {
    event.respondWith(networkFirst(request, RUNTIME));
    return;
  }
  event.respondWith(caches.match(request).then((hit) => hit ?? fetch(request)));
});
