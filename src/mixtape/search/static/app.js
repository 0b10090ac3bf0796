// mixtape search page: plain DOM, no framework, no CDN. Every value from the API is inserted as
// text (textContent), never as HTML, so track names cannot inject markup.
//
// The address holds what is shown (track, k, filters, threshold, tag, name search, page, map colour),
// so a copied link reopens the same result; each new result is a history entry (Back and Forward).
"use strict";

const $ = (id) => document.getElementById(id);
const PAGE = 50; // tracks a page of the collection list
let info = null;
let lastQuery = null; // {kind: "track", id} or {kind: "upload"}: re-run when an option changes
let listOffset = 0;
let pointMap = null;
const rowCache = new Map(); // map row -> track, for the hover tooltip
let spectroSeconds = 0;
let lastHighlight = null; // [query row, neighbour rows] of the result shown
let defaultColor = "artist"; // the map's colouring when the address names none: tag when there are tags

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

async function getJSON(url, options) {
  const response = await fetch(url, options);
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    let detail = body && body.detail ? body.detail : response.statusText;
    if (Array.isArray(detail)) detail = detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    throw new Error(`${response.status}: ${detail}`);
  }
  return body;
}

// --- names -------------------------------------------------------------------------------------

const titleOf = (t) => t.title || t.name || t.track_id;
const artistOf = (t) => t.artist_name || t.artist_id || "";

function describe(track) {
  const parts = [];
  if (artistOf(track)) parts.push(artistOf(track));
  if (track.album_id) parts.push(track.album_id);
  if (track.duration !== null && track.duration !== undefined) parts.push(`${track.duration.toFixed(1)} s`);
  return parts.join(" · ");
}

function tagList(tags) {
  if (!tags || !tags.length) return null;
  return el("div", { class: "tags" }, ...tags.map((t) => el("button", {
    type: "button", class: "tag", title: t.p === null ? "tag (tags table): show only tracks with it" : `predicted, p = ${t.p}: show only tracks with it`,
    onclick: () => setTag(t.tag),
  }, t.p === null ? t.tag : `${t.tag} ${Math.round(t.p * 100)}%`)));
}

// --- the address -------------------------------------------------------------------------------

function options(withTag = true) {
  const params = new URLSearchParams();
  params.set("k", $("opt-k").value || "10");
  if ($("opt-artist").checked) params.set("exclude_same_artist", "true");
  if ($("opt-album").checked) params.set("exclude_same_album", "true");
  if ($("opt-min").value !== "") params.set("min_score", $("opt-min").value);
  if ($("opt-mp").checked) params.set("rerank", "mp");
  if (withTag && $("opt-tag").value) params.set("tag", $("opt-tag").value);
  return params;
}

function stateURL() {
  const s = new URLSearchParams();
  if (lastQuery && lastQuery.kind === "track") s.set("track", lastQuery.id);
  for (const [key, value] of options()) if (!(key === "k" && value === "10")) s.set(key, value);
  if ($("query").value) s.set("q", $("query").value);
  if (listOffset) s.set("offset", String(listOffset));
  if ($("map-color").value && $("map-color").value !== defaultColor) s.set("color", $("map-color").value);
  const text = s.toString();
  return location.pathname + (text ? "?" + text : "");
}

// record what is shown as a new history entry (nothing when the address already says it)
function pushState() {
  const url = stateURL();
  if (url !== location.pathname + location.search) history.pushState(null, "", url);
}

function ensureTagOption(tag) {
  if (!tag) return;
  const select = $("opt-tag");
  if (![...select.options].some((o) => o.value === tag)) select.append(el("option", { value: tag }, tag));
}

// set the controls from the address and show what it says
async function applyState() {
  const s = new URLSearchParams(location.search);
  $("opt-k").value = s.get("k") || "10";
  $("opt-artist").checked = s.get("exclude_same_artist") === "true";
  $("opt-album").checked = s.get("exclude_same_album") === "true";
  $("opt-min").value = s.get("min_score") || "";
  $("opt-mp").checked = s.get("rerank") === "mp";
  ensureTagOption(s.get("tag"));
  $("opt-tag").value = s.get("tag") || "";
  $("query").value = s.get("q") || "";
  listOffset = Math.max(0, parseInt(s.get("offset") || "0", 10) || 0);
  const color = s.get("color") || defaultColor;
  if ([...$("map-color").options].some((o) => o.value === color) && $("map-color").value !== color) {
    $("map-color").value = color;
    loadColors();
  }
  const jobs = [listTracks()];
  const track = s.get("track");
  if (track) jobs.push(showSimilar(track, { push: false, play: false }));
  else clearResults();
  await Promise.all(jobs);
}

function clearResults() {
  lastQuery = null;
  $("query-track").replaceChildren();
  $("neighbours").replaceChildren();
  $("export").hidden = true;
  setStatus("");
  lastHighlight = null;
  if (pointMap) pointMap.setHighlight(-1, []);
}

// --- results -----------------------------------------------------------------------------------

function playButton(track) {
  return el("button", { type: "button", class: "play small", title: "play", "aria-label": `play ${titleOf(track)}`, onclick: () => play(track) }, "▶");
}

function card(track, extra) {
  return el("div", { class: "card", dataset: { trackId: track.track_id } },
    extra || null,
    el("div", { class: "title" }, playButton(track), " ", titleOf(track)),
    describe(track) ? el("div", { class: "sub" }, describe(track)) : null,
    titleOf(track) !== track.track_id ? el("div", { class: "id muted" }, track.track_id) : null,
    tagList(track.tags));
}

function showResults(data, queryCard) {
  $("query-track").replaceChildren(queryCard);
  const items = data.neighbours.map((n) => {
    const score = el("span", { class: "score", title: "cosine similarity" }, n.score.toFixed(3) + (n.mp_score !== undefined ? ` · mp ${n.mp_score.toFixed(3)}` : ""));
    const more = el("button", { class: "link", type: "button", onclick: () => showSimilar(n.track.track_id) }, "more like this");
    const c = card(n.track, score);
    c.append(more);
    return el("li", { class: "neighbour", dataset: { row: String(n.track.row) } }, c);
  });
  $("neighbours").replaceChildren(...items);
  const tag = $("opt-tag").value;
  setStatus(items.length ? `${items.length} similar tracks${tag ? ` tagged ${tag}` : ""}` : "no track passed the filters");
  lastHighlight = [data.query.row === undefined ? -1 : data.query.row, data.neighbours.map((n) => n.track.row)];
  if (pointMap) pointMap.setHighlight(...lastHighlight);
}

function exportLinks(trackId) {
  const base = `/api/playlist/${encodeURIComponent(trackId)}`;
  const params = options();
  $("export-m3u8").href = `${base}.m3u8?${params}`;
  const withUrls = new URLSearchParams(params);
  withUrls.set("urls", "1");
  $("export-m3u8-urls").href = `${base}.m3u8?${withUrls}`;
  $("export-json").href = `${base}.json?${params}`;
  $("export").hidden = false;
}

async function showSimilar(trackId, { push = true, play: autoplay = true } = {}) {
  lastQuery = { kind: "track", id: trackId };
  if (push) pushState();
  setStatus("searching…");
  for (const b of document.querySelectorAll("#tracks button.track")) b.classList.toggle("selected", b.dataset.trackId === trackId);
  try {
    const data = await getJSON(`/api/similar/${encodeURIComponent(trackId)}?${options()}`);
    if (!lastQuery || lastQuery.id !== trackId) return; // a newer query won
    showResults(data, card(data.query, el("div", { class: "sub" }, "query")));
    exportLinks(trackId);
    if (autoplay) play(data.query);
  } catch (err) {
    setStatus(err.message, true);
  }
}

// --- the collection list (paged) -----------------------------------------------------------------

async function listTracks() {
  const params = new URLSearchParams({ query: $("query").value, offset: String(listOffset), limit: String(PAGE) });
  if ($("opt-tag").value) params.set("tag", $("opt-tag").value);
  try {
    const data = await getJSON(`/api/tracks?${params}`);
    const items = data.tracks.map((t) => {
      rowCache.set(t.row, t);
      const selected = lastQuery && lastQuery.kind === "track" && lastQuery.id === t.track_id;
      return el("li", {},
        el("button", { type: "button", class: "track" + (selected ? " selected" : ""), dataset: { trackId: t.track_id }, onclick: () => showSimilar(t.track_id) },
          el("div", {}, titleOf(t)), describe(t) ? el("div", { class: "sub" }, describe(t)) : null));
    });
    $("tracks").replaceChildren(...items);
    const what = data.tag ? ` tagged ${data.tag}` : "";
    $("track-count").textContent = `${data.total.toLocaleString()} match${data.total === 1 ? "" : "es"}${what}`;
    $("page-range").textContent = data.total ? `${(data.offset + 1).toLocaleString()}–${(data.offset + items.length).toLocaleString()} of ${data.total.toLocaleString()}` : "";
    $("page-prev").disabled = data.offset === 0;
    $("page-next").disabled = data.offset + items.length >= data.total;
  } catch (err) {
    setStatus(err.message, true);
  }
}

function page(delta) {
  listOffset = Math.max(0, listOffset + delta * PAGE);
  pushState();
  listTracks();
  $("tracks").scrollTop = 0;
}

// --- the player and its spectrogram ------------------------------------------------------------

async function play(track) {
  const player = $("player");
  if (player.dataset.trackId !== track.track_id) {
    player.dataset.trackId = track.track_id;
    player.src = track.audio_url;
    $("now-title").textContent = `${titleOf(track)}${artistOf(track) ? " · " + artistOf(track) : ""}`;
    $("now-title").className = "";
    loadSpectrogram(track.track_id);
  }
  try { await player.play(); } catch (e) { /* the browser wants a gesture first: the controls are there */ }
}

async function loadSpectrogram(trackId) {
  const img = $("spectro-img");
  $("spectro").hidden = false;
  $("spectro-note").textContent = "spectrogram…";
  try {
    const response = await fetch(`/api/spectrogram/${encodeURIComponent(trackId)}`);
    if (!response.ok) {
      let detail = response.statusText;
      try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
      throw new Error(detail);
    }
    if ($("player").dataset.trackId !== trackId) return;
    spectroSeconds = parseFloat(response.headers.get("x-spectrogram-seconds") || "0");
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
    img.src = URL.createObjectURL(await response.blob());
    img.hidden = false;
    const source = response.headers.get("x-spectrogram-source");
    $("spectro-note").textContent = source === "store" ? "log-mel, as the model hears it" : `log-mel of the first ${spectroSeconds.toFixed(0)} s`;
  } catch (err) {
    img.hidden = true;
    $("playhead").hidden = true;
    spectroSeconds = 0;
    $("spectro-note").textContent = err.message;
  }
}

function movePlayhead() {
  const player = $("player"), head = $("playhead");
  const t = player.currentTime;
  head.hidden = !(spectroSeconds > 0 && t <= spectroSeconds);
  if (!head.hidden) head.style.left = `${(100 * t) / spectroSeconds}%`;
  if (!player.paused) requestAnimationFrame(movePlayhead);
}

// --- upload ------------------------------------------------------------------------------------

async function upload(event) {
  event.preventDefault();
  const file = $("upload").files[0];
  if (!file) { setStatus("choose an audio file first", true); return; }
  if (info && file.size > info.max_upload_mb * 1024 * 1024) { setStatus(`the file is larger than the ${info.max_upload_mb} MB limit`, true); return; }
  lastQuery = { kind: "upload" };
  setStatus(`embedding ${file.name}…`);
  const form = new FormData();
  form.append("file", file);
  try {
    const data = await getJSON(`/api/similar?${options()}`, { method: "POST", body: form });
    const q = data.query;
    const queryCard = el("div", { class: "card" }, el("div", { class: "sub" }, "uploaded file"), el("div", { class: "title" }, q.name),
      el("div", { class: "sub" }, `${q.duration.toFixed(1)} s${q.seconds_used < q.duration ? ` (first ${q.seconds_used.toFixed(0)} s used)` : ""}`), tagList(q.tags));
    showResults(data, queryCard);
    $("export").hidden = true;
  } catch (err) {
    setStatus(err.message, true);
  }
}

// --- tags ----------------------------------------------------------------------------------------

function setTag(tag) {
  ensureTagOption(tag);
  $("opt-tag").value = tag;
  optionsChanged();
}

async function loadTags() {
  if (!info.tags) return;
  $("opt-tag-label").hidden = false;
  try {
    const data = await getJSON("/api/tags");
    const keep = $("opt-tag").value;
    $("opt-tag").replaceChildren(el("option", { value: "" }, "any"),
      ...data.tags.map((t) => el("option", { value: t.tag }, `${t.tag} (${t.count})`)));
    ensureTagOption(keep);
    $("opt-tag").value = keep;
  } catch (err) {
    setStatus(err.message, true);
  }
}

function optionsChanged() {
  listOffset = 0;
  if (!lastQuery || lastQuery.kind === "track") pushState();
  listTracks();
  if (!lastQuery) return;
  if (lastQuery.kind === "track") showSimilar(lastQuery.id, { push: false, play: false });
  else $("upload-form").requestSubmit();
}

// --- the map -----------------------------------------------------------------------------------

async function trackAtRow(row) {
  if (rowCache.has(row)) return rowCache.get(row);
  const data = await getJSON(`/api/tracks?offset=${row}&limit=1`);
  const t = data.tracks[0];
  rowCache.set(row, t);
  return t;
}

let hoverTimer = null;
function hover(row, event) {
  const tip = $("map-tip");
  clearTimeout(hoverTimer);
  if (row < 0) { tip.hidden = true; return; }
  const box = $("map-wrap").getBoundingClientRect();
  const x = event ? event.clientX - box.left : 0, y = event ? event.clientY - box.top : 0;
  hoverTimer = setTimeout(async () => {
    try {
      const t = await trackAtRow(row);
      if (pointMap.hover !== row) return;
      tip.replaceChildren(el("div", { class: "title" }, titleOf(t)), el("div", { class: "sub" }, describe(t)),
        ...(t.tags && t.tags.length ? [el("div", { class: "sub" }, t.tags.map((g) => g.tag).join(", "))] : []));
      tip.hidden = false;
      const w = tip.offsetWidth, h = tip.offsetHeight;
      tip.style.left = `${x + 14 + w > box.width ? Math.max(0, x - 14 - w) : x + 14}px`;
      tip.style.top = `${y + 14 + h > box.height ? Math.max(0, y - 14 - h) : y + 14}px`;
    } catch (err) { tip.hidden = true; }
  }, 40);
}

async function clickPoint(row) {
  const t = await trackAtRow(row);
  await showSimilar(t.track_id);
}

let colorRequest = 0;
async function loadColors() {
  if (!pointMap || !pointMap.n) return;
  const by = $("map-color").value;
  const token = ++colorRequest;
  try {
    const data = await getJSON(`/api/map/colors?by=${by}`);
    if (token !== colorRequest) return;
    const bytes = Uint8Array.from(atob(data.codes), (c) => c.charCodeAt(0));
    pointMap.setColors(new Int32Array(bytes.buffer));
    const shown = data.legend.slice(0, 12);
    const items = shown.map((g, code) => el("li", {}, el("span", { class: "swatch", style: `background:${window.groupCSS(code)}` }), `${g.label} (${g.count})`));
    if (data.legend.length > shown.length) items.push(el("li", { class: "muted" }, `+ ${data.legend.length - shown.length} more`));
    $("legend").replaceChildren(...items);
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function loadMap() {
  const m = await getJSON("/api/map");
  $("map-color").replaceChildren(...m.color_by.map((by) => el("option", { value: by }, by)));
  defaultColor = m.color_by.includes("tag") ? "tag" : "artist";
  const wanted = new URLSearchParams(location.search).get("color") || defaultColor;
  if (m.color_by.includes(wanted)) $("map-color").value = wanted;
  if (!m.available) {
    $("map-empty").textContent = `No map: ${m.problem}`;
    $("map-empty").hidden = false;
    $("map").hidden = true;
    $("map-color").disabled = true;
    return;
  }
  const response = await fetch(m.points);
  const xy = new Float32Array(await response.arrayBuffer());
  pointMap = new window.PointMap($("map"), { onHover: hover, onClick: clickPoint });
  pointMap.setPoints(xy);
  await loadColors();
}

// --- start -------------------------------------------------------------------------------------

async function start() {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); listOffset = 0; pushState(); listTracks(); });
  $("upload-form").addEventListener("submit", upload);
  $("options").addEventListener("change", optionsChanged);
  $("page-prev").addEventListener("click", () => page(-1));
  $("page-next").addEventListener("click", () => page(1));
  $("map-color").addEventListener("change", () => { pushState(); loadColors(); });
  $("map-reset").addEventListener("click", () => pointMap && pointMap.resetView());
  $("copy-link").addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(location.href); setStatus("link copied"); } catch (e) { setStatus(location.href); }
  });
  const player = $("player");
  player.addEventListener("play", () => requestAnimationFrame(movePlayhead));
  player.addEventListener("seeked", movePlayhead);
  player.addEventListener("timeupdate", movePlayhead);
  $("spectro").addEventListener("click", (e) => {
    const box = $("spectro").getBoundingClientRect();
    if (spectroSeconds > 0) player.currentTime = ((e.clientX - box.left) / box.width) * spectroSeconds;
  });
  window.addEventListener("popstate", applyState);
  try {
    info = await getJSON("/api/info");
    const idx = info.index;
    $("info").textContent = `${info.tracks.toLocaleString()} tracks · ${idx.kind} index, recall@10 ${Number(idx.recall10).toFixed(3)} · ${info.encoder.backbone || "encoder"}` + (info.tags ? ` · tags: ${info.tags.replace("+", " + ")}` : "");
    $("opt-k").max = info.max_k;
    $("opt-mp-label").hidden = !info.rerank.includes("mp");
    if (!info.query_by_audio) {
      $("upload-form").querySelector("button").disabled = true;
      $("upload-form").title = info.query_by_audio_problem || "query by audio is unavailable";
    }
  } catch (err) {
    setStatus(err.message, true);
    return;
  }
  await loadTags();
  const mapLoaded = loadMap().catch((err) => setStatus(err.message, true));
  await applyState();
  await mapLoaded;
  // the map may arrive after the result: highlight it now
  if (pointMap && lastHighlight) pointMap.setHighlight(...lastHighlight);
  document.body.dataset.ready = "1";
}

start();
