// mixtape search page: plain DOM, no framework, no CDN. Every value from the API is inserted as
// text (textContent), never as HTML, so track names cannot inject markup.
"use strict";

const $ = (id) => document.getElementById(id);
let info = null;
let lastQuery = null; // {kind: "track", id} or {kind: "upload"}: re-run when an option changes

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

function options() {
  const params = new URLSearchParams();
  params.set("k", $("opt-k").value || "10");
  if ($("opt-artist").checked) params.set("exclude_same_artist", "true");
  if ($("opt-album").checked) params.set("exclude_same_album", "true");
  if ($("opt-min").value !== "") params.set("min_score", $("opt-min").value);
  if ($("opt-mp").checked) params.set("rerank", "mp");
  return params;
}

function describe(track) {
  const parts = [];
  if (track.artist_id) parts.push(track.artist_id);
  if (track.album_id) parts.push(track.album_id);
  if (track.duration !== null && track.duration !== undefined) parts.push(`${track.duration.toFixed(1)} s`);
  return parts.join(" · ");
}

function tagList(tags) {
  if (!tags || !tags.length) return null;
  return el("div", { class: "tags" }, ...tags.map((t) => el("span", { class: "tag", title: `p = ${t.p}` }, `${t.tag} ${Math.round(t.p * 100)}%`)));
}

function card(track, extra) {
  return el("div", { class: "card", dataset: { trackId: track.track_id } },
    extra || null,
    el("div", { class: "title" }, track.name || track.track_id),
    el("div", { class: "sub" }, `${track.track_id}${describe(track) ? " · " + describe(track) : ""}`),
    tagList(track.tags),
    el("audio", { controls: true, preload: "metadata", src: track.audio_url }));
}

function showResults(data, queryCard) {
  $("query-track").replaceChildren(queryCard);
  const items = data.neighbours.map((n) => {
    const score = el("span", { class: "score", title: "cosine similarity" }, n.score.toFixed(3) + (n.mp_score !== undefined ? ` · mp ${n.mp_score.toFixed(3)}` : ""));
    const more = el("button", { class: "link", type: "button", onclick: () => showSimilar(n.track.track_id) }, "more like this");
    const c = card(n.track, score);
    c.append(more);
    return el("li", { class: "neighbour" }, c);
  });
  $("neighbours").replaceChildren(...items);
  setStatus(items.length ? `${items.length} similar tracks` : "no track passed the filters");
}

async function showSimilar(trackId) {
  lastQuery = { kind: "track", id: trackId };
  setStatus("searching…");
  for (const b of document.querySelectorAll("#tracks button")) b.classList.toggle("selected", b.dataset.trackId === trackId);
  try {
    const data = await getJSON(`/api/similar/${encodeURIComponent(trackId)}?${options()}`);
    showResults(data, card(data.query, el("div", { class: "sub" }, "query")));
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function searchTracks(query) {
  try {
    const data = await getJSON(`/api/tracks?${new URLSearchParams({ query, limit: "200" })}`);
    const items = data.tracks.map((t) => el("li", {},
      el("button", { type: "button", dataset: { trackId: t.track_id }, onclick: () => showSimilar(t.track_id) },
        el("div", {}, t.name || t.track_id), el("div", { class: "sub" }, describe(t) || t.track_id))));
    $("tracks").replaceChildren(...items);
    $("track-count").textContent = `${data.total} match${data.total === 1 ? "" : "es"}` + (data.total > items.length ? ` (first ${items.length} shown)` : "");
  } catch (err) {
    setStatus(err.message, true);
  }
}

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
  } catch (err) {
    setStatus(err.message, true);
  }
}

async function start() {
  $("search-form").addEventListener("submit", (e) => { e.preventDefault(); searchTracks($("query").value); });
  $("upload-form").addEventListener("submit", upload);
  $("options").addEventListener("change", () => {
    if (!lastQuery) return;
    if (lastQuery.kind === "track") showSimilar(lastQuery.id);
    else $("upload-form").requestSubmit();
  });
  try {
    info = await getJSON("/api/info");
    const idx = info.index;
    $("info").textContent = `${info.tracks} tracks · ${idx.kind} index, recall@10 ${Number(idx.recall10).toFixed(3)} · ${info.encoder.backbone || "encoder"}` + (info.tagger ? ` · ${info.tagger.tags} tags` : "");
    $("opt-k").max = info.max_k;
    $("opt-mp-label").hidden = !info.rerank.includes("mp");
    if (!info.query_by_audio) {
      $("upload-form").querySelector("button").disabled = true;
      $("upload-form").title = info.query_by_audio_problem || "query by audio is unavailable";
    }
  } catch (err) {
    setStatus(err.message, true);
  }
  searchTracks("");
}

start();
