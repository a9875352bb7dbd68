// The basemap under every Leaflet map of gridpatrol's pages (GET /basemap.json says which).
//
// By default the offline basemap: the city's own OSM extract, stored at import and served as vector tiles by the
// service (/tiles/basemap/{z}/{x}/{y}.mvt: water, green, landuse, waterways, rail, buildings, roads, places, pois),
// drawn by MapLibre GL (vendored, CSP build) inside Leaflet with the maplibre-gl-leaflet plugin, in the style below:
// light and muted, so the service's coloured overlays read on top of it. Labels are drawn from the machine's own
// fonts (no glyph server: MapLibre 5.11+ renders text locally when a style names no glyphs), Chinese names first;
// window.gridpatrolBasemap.setLanguage("en") shows the English ones where OSM has them.
//
// Or an intranet basemap, when the service names one (GRIDPATROL_TILE_URL, GRIDPATROL_TILE_CRS). Tianditu and
// other CGCS2000/WGS-84 tiles are drawn as they are. Tiles in GCJ-02 (Amap-style, offset by up to several hundred
// metres) are drawn where the service's WGS-84 overlays expect them: the layer asks for the tiles around the map's
// centre converted to GCJ-02, so the GCJ-02 picture of a place lands on its WGS-84 position (the offset varies by
// metres across a city's view: the centre's is applied to the whole view).
//
// Loaded after leaflet.js; every map made afterwards gets the basemap. A page whose root element says
// data-basemap-theme="dark" (the command centre's wall) gets the same map in dark colours.
"use strict";

(function () {
  if (!window.L) return;
  const A = 6378245.0;
  const EE = 0.006693421622965943;
  function outsideChina(lon, lat) { return lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271; }
  function dLat(x, y) {
    let r = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin(y / 3.0 * Math.PI)) * 2.0 / 3.0;
    r += (160.0 * Math.sin(y / 12.0 * Math.PI) + 320 * Math.sin(y * Math.PI / 30.0)) * 2.0 / 3.0;
    return r;
  }
  function dLon(x, y) {
    let r = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
    r += (20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0 / 3.0;
    r += (20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin(x / 3.0 * Math.PI)) * 2.0 / 3.0;
    r += (150.0 * Math.sin(x / 12.0 * Math.PI) + 300.0 * Math.sin(x / 30.0 * Math.PI)) * 2.0 / 3.0;
    return r;
  }
  // WGS-84 → GCJ-02, the published formula (the same as prcoords' wgs_gcj, which the service uses)
  function toGcj(latlng) {
    const lat = latlng.lat, lon = latlng.lng;
    if (outsideChina(lon, lat)) return L.latLng(lat, lon);
    let dlat = dLat(lon - 105.0, lat - 35.0);
    let dlon = dLon(lon - 105.0, lat - 35.0);
    const rad = lat / 180.0 * Math.PI;
    let magic = Math.sin(rad);
    magic = 1 - EE * magic * magic;
    const sq = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sq) * Math.PI);
    dlon = (dlon * 180.0) / (A / sq * Math.cos(rad) * Math.PI);
    return L.latLng(lat + dlat, lon + dlon);
  }
  window.gridpatrolToGcj02 = toGcj;

  const Gcj02TileLayer = L.TileLayer.extend({
    _setZoomTransform(level, center, zoom) {
      return L.TileLayer.prototype._setZoomTransform.call(this, level, toGcj(center), zoom);
    },
    _getTiledPixelBounds(center) {
      return L.TileLayer.prototype._getTiledPixelBounds.call(this, toGcj(center));
    },
  });

  const here = (document.currentScript && document.currentScript.src) || "/static/basemap.js";
  const vendor = new URL("vendor/", here).href;
  const FONTS = ["Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "WenQuanYi Micro Hei", "sans-serif"];
  const LIGHT = {
    background: "#f3f0ea", landuse: { residential: "#ebe7e1", commercial: "#f1e5e2", industrial: "#ebe4ea",
                                      education: "#f5eed5", hospital: "#f4e2e0", construction: "#e7e3d5",
                                      farmland: "#eef0d7", military: "#ede0da", other: "#ebe7e1" },
    green: { forest: "#c6dfb3", sport: "#d2e8cf", cemetery: "#d5e0cc", other: "#d7eac6" }, water: "#aecde2",
    building: "#ddd7ce", buildingEdge: "#c9c1b5", rail: "#a9a6a0", path: "#b9ab96",
    road: { motorway: "#f2c38b", trunk: "#f6cf94", primary: "#f9dfa2", secondary: "#fcefbd", tertiary: "#ffffff",
            minor: "#ffffff", service: "#ffffff", pedestrian: "#f3efe8" },
    casingMinor: "#cfc8bc", casingMajor: "#d5b27a", text: "#4b4741", halo: "rgba(255,255,255,0.9)",
    waterText: "#4f7fa3", place: "#3f3a34", poi: { park: "#4c7a3a", forest: "#4c7a3a", water: "#4f7fa3",
                                                    station: "#3d5f8f", other: "#6e5a45" },
  };
  const DARK = {
    background: "#0a1626", landuse: { residential: "#0e1b2e", commercial: "#111d31", industrial: "#101a2b",
                                      education: "#11202f", hospital: "#141d30", construction: "#0f1a2a",
                                      farmland: "#0f1d24", military: "#121a2a", other: "#0e1b2e" },
    green: { forest: "#0f2a24", sport: "#11291f", cemetery: "#10241f", other: "#102821" }, water: "#0d2d4a",
    building: "#16263c", buildingEdge: "#1f3350", rail: "#34465f", path: "#2a3a52",
    road: { motorway: "#3f5677", trunk: "#3a5070", primary: "#344966", secondary: "#2e425d", tertiary: "#263850",
            minor: "#1f3047", service: "#1b2a3f", pedestrian: "#1b2a3f" },
    casingMinor: "#0a1626", casingMajor: "#0a1626", text: "#9fb3d1", halo: "rgba(6,16,31,0.9)",
    waterText: "#4f86b5", place: "#c6d4ea", poi: { park: "#5d9a7a", forest: "#5d9a7a", water: "#4f86b5",
                                                    station: "#6f94c8", other: "#8a9bb5" },
  };
  const THEME = document.documentElement.dataset.basemapTheme === "dark" ? DARK : LIGHT;
  const ROAD_FILL = THEME.road;
  // road widths in pixels at zoom 12 and 18, per class
  const ROAD_WIDTH = { motorway: [2.5, 18], trunk: [2.2, 16], primary: [2, 14], secondary: [1.6, 12],
                       tertiary: [1.2, 10], minor: [0.6, 8], service: [0.3, 4], pedestrian: [0.5, 5] };
  let language = (localStorage.getItem("gp-lang") || document.documentElement.lang || "zh").startsWith("en")
    ? "en" : "zh";

  function label() {
    return language === "en" ? ["coalesce", ["get", "name_en"], ["get", "name"]]
                             : ["coalesce", ["get", "name"], ["get", "name_en"]];
  }
  function width(kind, casing) {
    const [low, high] = ROAD_WIDTH[kind];
    const extra = casing ? 1.5 : 0;
    return ["interpolate", ["exponential", 1.6], ["zoom"], 10, low * 0.5, 12, low + extra, 18, high + extra * 2];
  }
  function kindIs(...kinds) { return ["in", ["get", "kind"], ["literal", kinds]]; }

  // a MapLibre "match" on a feature's kind: the colour of each kind named, else the "other" one
  function match(colours) {
    const out = ["match", ["get", "kind"]];
    Object.entries(colours).forEach(([kind, colour]) => { if (kind !== "other") out.push(kind, colour); });
    out.push(colours.other);
    return out;
  }

  function style(tiles) {
    const C = THEME;
    const src = "basemap";
    const roadKinds = ["pedestrian", "service", "minor", "tertiary", "secondary", "primary", "trunk", "motorway"];
    const layers = [
      { id: "background", type: "background", paint: { "background-color": C.background } },
      { id: "landuse", type: "fill", source: src, "source-layer": "landuse",
        paint: { "fill-color": match(C.landuse), "fill-opacity": 0.9 } },
      { id: "green", type: "fill", source: src, "source-layer": "green", paint: { "fill-color": match(C.green) } },
      { id: "water", type: "fill", source: src, "source-layer": "water", paint: { "fill-color": C.water } },
      { id: "waterways", type: "line", source: src, "source-layer": "waterways",
        layout: { "line-cap": "round", "line-join": "round" },
        paint: { "line-color": C.water,
                 "line-width": ["interpolate", ["linear"], ["zoom"], 10, ["match", ["get", "kind"], "river", 1.5, 0.5],
                                18, ["match", ["get", "kind"], "river", 12, "canal", 8, 3]] } },
      { id: "buildings", type: "fill", source: src, "source-layer": "buildings", minzoom: 14,
        paint: { "fill-color": C.building, "fill-outline-color": C.buildingEdge,
                 "fill-opacity": ["interpolate", ["linear"], ["zoom"], 14, 0.5, 16, 0.9] } },
      { id: "rail", type: "line", source: src, "source-layer": "rail",
        paint: { "line-color": C.rail, "line-width": ["interpolate", ["linear"], ["zoom"], 10, 0.8, 18, 3],
                 "line-dasharray": [3, 2] } },
      { id: "paths", type: "line", source: src, "source-layer": "roads", filter: kindIs("path"), minzoom: 15,
        paint: { "line-color": C.path, "line-width": ["interpolate", ["linear"], ["zoom"], 15, 0.7, 18, 1.6],
                 "line-dasharray": [2, 1.5] } },
    ];
    roadKinds.forEach((kind) => layers.push({
      id: `road-casing-${kind}`, type: "line", source: src, "source-layer": "roads", filter: kindIs(kind),
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": kind === "tertiary" || kind === "minor" || kind === "service" ? C.casingMinor
                                                                                           : C.casingMajor,
               "line-width": width(kind, true) },
    }));
    roadKinds.forEach((kind) => layers.push({
      id: `road-${kind}`, type: "line", source: src, "source-layer": "roads", filter: kindIs(kind),
      layout: { "line-cap": "round", "line-join": "round" },
      paint: { "line-color": ROAD_FILL[kind], "line-width": width(kind) },
    }));
    const halo = { "text-color": C.text, "text-halo-color": C.halo, "text-halo-width": 1.6 };
    layers.push(
      { id: "water-names", type: "symbol", source: src, "source-layer": "waterways", minzoom: 13,
        layout: { "symbol-placement": "line", "text-field": label(), "text-font": FONTS, "text-size": 12,
                  "text-letter-spacing": 0.1 },
        paint: { "text-color": C.waterText, "text-halo-color": C.halo, "text-halo-width": 1.2 } },
      { id: "road-names", type: "symbol", source: src, "source-layer": "roads",
        filter: ["!", kindIs("path", "service")],
        layout: { "symbol-placement": "line", "text-field": label(), "text-font": FONTS,
                  "text-size": ["interpolate", ["linear"], ["zoom"], 13, 11, 18, 14],
                  "symbol-sort-key": ["match", ["get", "kind"], "motorway", 1, "trunk", 2, "primary", 3,
                                      "secondary", 4, "tertiary", 5, 6],
                  "text-max-angle": 40, "symbol-spacing": 300 },
        paint: halo },
      { id: "pois", type: "symbol", source: src, "source-layer": "pois",
        layout: { "text-field": label(), "text-font": FONTS, "text-size": 11, "text-max-width": 8,
                  "text-variable-anchor": ["center", "top", "bottom"], "text-optional": false },
        paint: { "text-color": match(C.poi), "text-halo-color": C.halo, "text-halo-width": 1.4 } },
      { id: "places", type: "symbol", source: src, "source-layer": "places",
        layout: { "text-field": label(), "text-font": FONTS, "text-transform": "none",
                  "text-size": ["match", ["get", "kind"], "city", 18, "town", 16, "suburb", 14, "village", 13, 12] },
        paint: { "text-color": C.place, "text-halo-color": C.halo, "text-halo-width": 2 } },
    );
    return { version: 8, sources: { [src]: { type: "vector", tiles: [tiles], maxzoom: 15,
                                             attribution: "© OpenStreetMap contributors (ODbL)" } },
             layers: layers.map(glZooms) };
  }

  // The zooms above are Leaflet's (256-pixel tiles); MapLibre GL's are one less (512-pixel tiles, which the
  // service fills with what a 256-pixel tile of the next zoom holds: ?tile_size=512).
  function glZooms(layer) {
    const out = Object.assign({}, layer);
    if (out.minzoom) out.minzoom = Math.max(0, out.minzoom - 1);
    ["paint", "layout"].forEach((part) => {
      if (!out[part]) return;
      out[part] = Object.fromEntries(Object.entries(out[part]).map(([k, v]) => [k, shiftStops(v)]));
    });
    return out;
  }
  function shiftStops(value) {
    if (!Array.isArray(value) || value[0] !== "interpolate" || !Array.isArray(value[2]) || value[2][0] !== "zoom") {
      return value;
    }
    return value.map((v, i) => (i >= 3 && i % 2 === 1 ? v - 1 : v));
  }

  function script(src) {
    return new Promise((resolve, reject) => {
      const el = document.createElement("script");
      el.src = src;
      el.onload = resolve;
      el.onerror = () => reject(new Error(`could not load ${src}`));
      document.head.appendChild(el);
    });
  }
  const PROTOCOL = "gridpatrol";
  // "/tiles/…" ↔ "gridpatrol://tiles/…": a path of this service that MapLibre fetches through the page
  function toProtocol(path) { return `${PROTOCOL}:/${path.startsWith("/") ? path : `/${path}`}`; }
  function fromProtocol(url) { return new URL(url.slice(`${PROTOCOL}://`.length), `${location.origin}/`).href; }
  let library = null;
  function loadLibrary() {
    if (!library) {
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = vendor + "maplibre-gl/maplibre-gl.css";
      document.head.appendChild(css);
      // The worker's script and every tile are fetched by the page itself, never by MapLibre's web worker: a
      // dedicated worker is not always under the page's service worker (Chromium 156 here: it is not), and the
      // member's phone must draw its cached grid with no signal. So the worker starts from a blob of its script
      // (fetched through the service worker) and tiles go by the gridpatrol:// protocol, which MapLibre hands
      // back to the page.
      library = script(vendor + "maplibre-gl/maplibre-gl-csp.js")
        .then(() => fetch(vendor + "maplibre-gl/maplibre-gl-csp-worker.js", { credentials: "same-origin" }))
        .then((answer) => {
          if (!answer.ok) throw new Error(`the map's worker script: ${answer.status}`);
          return answer.blob();
        })
        .then((blob) => {
          window.maplibregl.setWorkerUrl(URL.createObjectURL(blob));
          window.maplibregl.addProtocol(PROTOCOL, (params, abort) => fetch(fromProtocol(params.url),
            { credentials: "same-origin", signal: abort.signal })
            .then((answer) => {
              if (!answer.ok) throw new Error(`${answer.status} ${params.url}`);
              return answer.arrayBuffer();
            })
            .then((data) => ({ data })));
        })
        .then(() => script(vendor + "maplibre-gl-leaflet/leaflet-maplibre-gl.js"));
    }
    return library;
  }

  // A MapLibre GL layer on a Leaflet map, once the map has a view (Leaflet defers adding a layer until then, and the
  // plugin makes the GL map as the layer is added); ``layer.ready`` resolves to the GL map once its style loaded.
  function glLayer(map, glStyle) {
    return loadLibrary().then(() => new Promise((resolve) => map.whenReady(resolve))).then(() => {
      const layer = L.maplibreGL({ style: glStyle, interactive: false, attributionControl: false });
      layer.addTo(map);
      const gl = layer.getMaplibreMap();
      layer.ready = new Promise((resolve) => gl.once("load", () => resolve(gl)));
      return layer;
    });
  }
  // whether /basemap.json names the offline vector basemap, and whether this browser can draw it
  function offline(body) { return Boolean(body && !body.url && body.vector); }
  function isVector(body) { return offline(body) && Boolean(window.WebGLRenderingContext); }

  const vectorMaps = [];
  let pending = 0;
  function addVector(map) {
    const tiles = toProtocol(config.tiles || "/tiles/basemap/{z}/{x}/{y}.mvt?tile_size=512");
    const root = document.documentElement;
    pending += 1;
    root.dataset.basemap = "loading";  // "ready" once every basemap has drawn its first view (tests, screenshots)
    const settled = () => { pending -= 1; if (pending === 0) root.dataset.basemap = "ready"; };
    glLayer(map, style(tiles)).then((layer) => {
      const gl = layer.getMaplibreMap();
      gl.once("idle", settled);
      gl.on("error", (e) => console.warn("basemap:", e.error ? e.error.message : e));
      map.gridpatrolBasemap = layer;
      vectorMaps.push(layer);
      if (map.attributionControl) map.attributionControl.addAttribution("底图 © OpenStreetMap contributors");
      map.fire("gridpatrol:basemap", { layer });
    }).catch((err) => { console.warn("basemap:", err.message); settled(); });
  }

  let config = null;
  const wanted = [];
  function add(map) {
    if (!config) return;
    if (!config.url) {
      if (isVector(config)) addVector(map);
      return;
    }
    const options = { attribution: config.attribution || "", maxZoom: config.max_zoom || 18, maxNativeZoom: config.max_zoom || 18 };
    const layer = config.crs === "gcj02" ? new Gcj02TileLayer(config.url, options) : L.tileLayer(config.url, options);
    layer.addTo(map);
    layer.bringToBack();
    map.gridpatrolBasemap = layer;
  }
  window.gridpatrolBasemap = {
    setLanguage(lang) {
      language = lang === "en" ? "en" : "zh";
      vectorMaps.forEach((layer) => {
        if (!layer.ready) return;  // made with the language of its day: nothing to change yet
        layer.ready.then((gl) => ["water-names", "road-names", "pois", "places"]
          .forEach((id) => gl.setLayoutProperty(id, "text-field", label())));
      });
    },
    style,
    tiles: toProtocol,  // a page's own vector source: gridpatrolBasemap.tiles("/tiles/grids/{z}/{x}/{y}.mvt")
    // the id of a GL map's first label layer: a page's own layers go beneath it, so names stay readable
    beneathLabels: (gl) => (gl.getStyle().layers.find((l) => l.type === "symbol") || {}).id,
  };
  // The vector basemap's tile URLs over a box at the zooms a page shows (GL zooms: Leaflet's minus one): the very
  // URLs the gridpatrol:// protocol fetches, so that a service worker's cache answers MapLibre with them.
  function tileUrls(bounds, zooms) {
    const template = toProtocol(config.tiles);
    const urls = [];
    zooms.forEach((z) => {
      const n = 2 ** z;
      const tx = (lon) => Math.min(n - 1, Math.max(0, Math.floor((lon + 180) / 360 * n)));
      const ty = (lat) => {
        const r = Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI / 180;
        return Math.min(n - 1, Math.max(0, Math.floor((1 - Math.asinh(Math.tan(r)) / Math.PI) / 2 * n)));
      };
      for (let x = tx(bounds.getWest()); x <= tx(bounds.getEast()); x += 1) {
        for (let y = ty(bounds.getNorth()); y <= ty(bounds.getSouth()); y += 1) {
          urls.push(fromProtocol(template.replace("{z}", z).replace("{x}", x).replace("{y}", y)));
        }
      }
    });
    return urls;
  }
  const configured = fetch("/basemap.json", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((body) => { config = body; wanted.splice(0).forEach(add); return body; })
    .catch(() => null);
  // The MapLibre GL map under a Leaflet map, for a page that draws its own vector layers in it (the leaders' grids):
  // the vector basemap's, or, with an intranet basemap or none, a transparent one of its own.
  window.gridpatrolBasemap.gl = (map) => configured.then((body) => {
    if (isVector(body)) {
      if (map.gridpatrolBasemap && map.gridpatrolBasemap.ready) return map.gridpatrolBasemap.ready;
      return new Promise((resolve) => map.once("gridpatrol:basemap", (e) => resolve(e.layer.ready)));
    }
    return glLayer(map, { version: 8, sources: {}, layers: [] }).then((layer) => layer.ready);
  });
  // Fetch the basemap's tiles over a box (a member's grid) so that a service worker keeps them for offline use;
  // resolves to the number fetched (0: no vector basemap).
  window.gridpatrolBasemap.prefetch = (bounds, zooms = [12, 13, 14, 15]) => configured.then((body) => {
    if (!offline(body)) return 0;
    const urls = tileUrls(bounds, zooms);
    return Promise.all(urls.map((u) => fetch(u, { credentials: "same-origin" }).then((r) => r.ok)))
      .then((oks) => oks.filter(Boolean).length);
  });
  L.Map.addInitHook(function () {
    if (config === null) wanted.push(this); else add(this);
  });
})();
