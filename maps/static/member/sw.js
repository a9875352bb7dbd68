// The member page's service worker: the page and its assets from the cache first (it opens with no signal), the
// data it reads from the network first, falling back to the last answer cached. Nothing it sends passes through
// here: the page's own outbox (IndexedDB) queues and retries those, with their idempotency keys. The basemap's
// tiles come from the cache first too (they change only when the basemap is rebuilt, and the cached one is
// refreshed behind): the page fetches its grid's at sign-in (basemap.js, prefetch), so the map reads offline.
const CACHE = "gridpatrol-member-v3";
const VENDOR = "/static/vendor/";
const SHELL = ["/m/", "/static/member/member.js", "/static/member/member.css", `${VENDOR}leaflet/leaflet.js`,
  `${VENDOR}leaflet/leaflet.css`, "/static/basemap.js", `${VENDOR}maplibre-gl/maplibre-gl-csp.js`,
  `${VENDOR}maplibre-gl/maplibre-gl-csp-worker.js`, `${VENDOR}maplibre-gl/maplibre-gl.css`,
  `${VENDOR}maplibre-gl-leaflet/leaflet-maplibre-gl.js`];
const TILES = /^\/tiles\/basemap\/\d+\/\d+\/\d+\.mvt$/;
const DATA = /^\/(me|categories|grids|buildings|key-places|staff\/\d+\/events|events|basemap\.json)(\/|\?|$)/;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const answer = await fetch(request);
    if (answer.ok) cache.put(request, answer.clone());
    return answer;
  } catch (error) {
    const cached = await cache.match(request);
    if (cached) return cached;
    throw error;
  }
}

async function cacheFirst(request, options) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request, options || { ignoreSearch: request.mode === "navigate" });
  const fresh = fetch(request).then((answer) => { if (answer.ok) cache.put(request, answer.clone()); return answer; });
  if (cached) { fresh.catch(() => {}); return cached; }
  return fresh;
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === "/m/" || url.pathname.startsWith("/static/")) event.respondWith(cacheFirst(event.request));
  else if (TILES.test(url.pathname)) event.respondWith(cacheFirst(event.request, { ignoreVary: true }));
  else if (DATA.test(url.pathname)) event.respondWith(networkFirst(event.request));
});
