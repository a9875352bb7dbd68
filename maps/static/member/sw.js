// The member page's service worker: the page and its assets from the cache first (it opens with no signal), the
// data it reads from the network first, falling back to the last answer cached. Nothing it sends passes through
// here: the page's own outbox (IndexedDB) queues and retries those, with their idempotency keys.
const CACHE = "gridpatrol-member-v2";
const SHELL = ["/m/", "/static/member/member.js", "/static/member/member.css", "/static/vendor/leaflet/leaflet.js",
  "/static/vendor/leaflet/leaflet.css", "/static/basemap.js"];
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

async function cacheFirst(request) {
  const cache = await caches.open(CACHE);
  const cached = await cache.match(request, { ignoreSearch: request.mode === "navigate" });
  const fresh = fetch(request).then((answer) => { if (answer.ok) cache.put(request, answer.clone()); return answer; });
  if (cached) { fresh.catch(() => {}); return cached; }
  return fresh;
}

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname === "/m/" || url.pathname.startsWith("/static/")) event.respondWith(cacheFirst(event.request));
  else if (DATA.test(url.pathname)) event.respondWith(networkFirst(event.request));
});
