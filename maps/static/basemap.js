// The intranet basemap under every Leaflet map of gridpatrol's pages, when the service names one
// (GRIDPATROL_TILE_URL, GRIDPATROL_TILE_CRS: GET /basemap.json). Tianditu and other CGCS2000/WGS-84 tiles are drawn
// as they are. Tiles in GCJ-02 (Amap-style, offset by up to several hundred metres) are drawn where the service's
// WGS-84 overlays expect them: the layer asks for the tiles around the map's centre converted to GCJ-02, so the
// GCJ-02 picture of a place lands on its WGS-84 position (the offset varies by metres across a city's view: the
// centre's is applied to the whole view). Loaded after leaflet.js; every map made afterwards gets the basemap.
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

  let config = null;
  const wanted = [];
  function add(map) {
    if (!config || !config.url) return;
    const options = { attribution: config.attribution || "", maxZoom: config.max_zoom || 18, maxNativeZoom: config.max_zoom || 18 };
    const layer = config.crs === "gcj02" ? new Gcj02TileLayer(config.url, options) : L.tileLayer(config.url, options);
    layer.addTo(map);
    layer.bringToBack();
    map.gridpatrolBasemap = layer;
  }
  fetch("/basemap.json", { credentials: "same-origin" })
    .then((r) => (r.ok ? r.json() : null))
    .then((body) => { config = body; wanted.splice(0).forEach(add); })
    .catch(() => {});
  L.Map.addInitHook(function () {
    if (config === null) wanted.push(this); else add(this);
  });
})();
