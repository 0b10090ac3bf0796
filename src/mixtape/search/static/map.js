// mixtape map: every track of the collection as a point on a <canvas>, no per-point DOM.
// The points are painted into an offscreen canvas (pixels written straight into an ImageData, in
// batches over animation frames), which the visible canvas copies before drawing the few highlighted
// points on top; hover and click find the nearest point through a uniform grid over the layout.
"use strict";

const PALETTE = [
  "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac",
  "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#637939",
];
const UNKNOWN = [200, 200, 205];
const GRID = 128; // grid cells a side, over the layout's [0, 1] square
const BATCH = 50000; // points painted per animation frame

function hexRGB(hex) {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

function hslRGB(h, s, l) {
  const k = (n) => (n + h / 30) % 12;
  const a = s * Math.min(l, 1 - l);
  const f = (n) => l - a * Math.max(-1, Math.min(k(n) - 3, Math.min(9 - k(n), 1)));
  return [Math.round(255 * f(0)), Math.round(255 * f(8)), Math.round(255 * f(4))];
}

// colour of group `code` (0 = the largest group): a palette for the largest, golden-angle hues beyond
function groupRGB(code) {
  if (code < 0) return UNKNOWN;
  if (code < PALETTE.length) return hexRGB(PALETTE[code]);
  return hslRGB((code * 137.508) % 360, 0.45, 0.6);
}

function groupCSS(code) {
  const [r, g, b] = groupRGB(code);
  return `rgb(${r},${g},${b})`;
}

class PointMap {
  constructor(canvas, { onHover, onClick } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.base = document.createElement("canvas"); // the painted points, redrawn only when they change
    this.onHover = onHover || (() => {});
    this.onClick = onClick || (() => {});
    this.xy = null;
    this.codes = null;
    this.n = 0;
    this.view = { scale: 1, x: 0, y: 0 }; // screen = (data * size * scale) + offset
    this.highlight = { query: -1, rows: [] };
    this.hover = -1;
    this.paintToken = 0;
    this.painted = 0; // points painted into the base layer so far
    this._bind();
    new ResizeObserver(() => this.resize()).observe(canvas.parentElement);
  }

  setPoints(xy) {
    this.xy = xy;
    this.n = xy.length / 2;
    this.codes = new Int32Array(this.n).fill(-1);
    this._buildGrid();
    this.resize();
  }

  setColors(codes) {
    this.codes = codes;
    this.repaint();
  }

  setHighlight(query, rows) {
    this.highlight = { query: query === undefined ? -1 : query, rows: rows || [] };
    this.draw();
  }

  resetView() {
    this.view = { scale: 1, x: 0, y: 0 };
    this.repaint();
  }

  resize() {
    const box = this.canvas.parentElement.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(box.width * dpr));
    const h = Math.max(1, Math.round(box.height * dpr));
    if (w === this.canvas.width && h === this.canvas.height && this.painted) return;
    this.canvas.width = w;
    this.canvas.height = h;
    this.base.width = w;
    this.base.height = h;
    this.repaint();
  }

  // data [0, 1]^2 -> canvas pixels (y grows downwards, so the layout's y axis points up)
  side() { return Math.min(this.canvas.width, this.canvas.height) * 0.94; }
  toScreen(px, py) {
    const s = this.side() * this.view.scale;
    const ox = (this.canvas.width - this.side()) / 2 + this.view.x;
    const oy = (this.canvas.height - this.side()) / 2 + this.view.y;
    return [ox + px * s, oy + (1 - py) * s];
  }
  toData(sx, sy) {
    const s = this.side() * this.view.scale;
    const ox = (this.canvas.width - this.side()) / 2 + this.view.x;
    const oy = (this.canvas.height - this.side()) / 2 + this.view.y;
    return [(sx - ox) / s, 1 - (sy - oy) / s];
  }

  _buildGrid() {
    // counting sort of the points by cell: cellStart[c] .. cellStart[c + 1] index into cellPoints
    const n = this.n, xy = this.xy;
    const cellOf = new Int32Array(n);
    const counts = new Int32Array(GRID * GRID + 1);
    for (let i = 0; i < n; i++) {
      const cx = Math.min(GRID - 1, Math.max(0, Math.floor(xy[2 * i] * GRID)));
      const cy = Math.min(GRID - 1, Math.max(0, Math.floor(xy[2 * i + 1] * GRID)));
      cellOf[i] = cy * GRID + cx;
      counts[cellOf[i] + 1]++;
    }
    for (let c = 0; c < GRID * GRID; c++) counts[c + 1] += counts[c];
    const fill = counts.slice(0, GRID * GRID);
    const points = new Int32Array(n);
    for (let i = 0; i < n; i++) points[fill[cellOf[i]]++] = i;
    this.cellStart = counts;
    this.cellPoints = points;
  }

  // the point nearest to canvas pixel (sx, sy) within `radius` pixels, or -1
  nearest(sx, sy, radius) {
    if (!this.n) return -1;
    const [dx, dy] = this.toData(sx, sy);
    const r = radius / (this.side() * this.view.scale);
    const x0 = Math.max(0, Math.floor((dx - r) * GRID)), x1 = Math.min(GRID - 1, Math.floor((dx + r) * GRID));
    const y0 = Math.max(0, Math.floor((dy - r) * GRID)), y1 = Math.min(GRID - 1, Math.floor((dy + r) * GRID));
    let best = -1, bestD = r * r;
    for (let cy = y0; cy <= y1; cy++) {
      for (let cx = x0; cx <= x1; cx++) {
        const c = cy * GRID + cx;
        for (let k = this.cellStart[c]; k < this.cellStart[c + 1]; k++) {
          const i = this.cellPoints[k];
          const ex = this.xy[2 * i] - dx, ey = this.xy[2 * i + 1] - dy;
          const d = ex * ex + ey * ey;
          if (d <= bestD) { bestD = d; best = i; }
        }
      }
    }
    return best;
  }

  pointSize() {
    const dpr = window.devicePixelRatio || 1;
    const base = this.n > 50000 ? 1 : this.n > 5000 ? 2 : this.n > 1000 ? 3 : 5;
    return Math.max(1, Math.round(base * dpr * Math.min(3, Math.sqrt(this.view.scale))));
  }

  // paint every point into the base layer, BATCH points an animation frame (a newer repaint cancels)
  repaint() {
    if (!this.n || !this.base.width) { this.draw(); return; }
    const token = ++this.paintToken;
    const w = this.base.width, h = this.base.height;
    const image = this.base.getContext("2d").createImageData(w, h);
    const px = new Uint32Array(image.data.buffer); // little-endian RGBA: 0xAABBGGRR
    const size = this.pointSize(), half = Math.floor(size / 2);
    // the pixels of one point: a square up to 3 pixels, a disc above
    const stamp = [];
    const r2 = (size / 2) * (size / 2) + 0.5;
    for (let dy = 0; dy < size; dy++) {
      for (let dx = 0; dx < size; dx++) {
        const ex = dx - (size - 1) / 2, ey = dy - (size - 1) / 2;
        if (size <= 3 || ex * ex + ey * ey <= r2) stamp.push([dx, dy]);
      }
    }
    const colour = new Map();
    const packed = (code) => {
      let v = colour.get(code);
      if (v === undefined) {
        const [r, g, b] = groupRGB(code);
        v = (255 << 24) | (b << 16) | (g << 8) | r;
        colour.set(code, v);
      }
      return v;
    };
    // unknown (grey) points first, so coloured ones are painted over them
    const order = [];
    for (let i = 0; i < this.n; i++) if (this.codes[i] < 0) order.push(i);
    for (let i = 0; i < this.n; i++) if (this.codes[i] >= 0) order.push(i);
    this.painted = 0;
    const step = () => {
      if (token !== this.paintToken) return;
      const end = Math.min(order.length, this.painted + BATCH);
      for (let k = this.painted; k < end; k++) {
        const i = order[k];
        const [sx, sy] = this.toScreen(this.xy[2 * i], this.xy[2 * i + 1]);
        const x0 = Math.round(sx) - half, y0 = Math.round(sy) - half;
        if (x0 + size <= 0 || y0 + size <= 0 || x0 >= w || y0 >= h) continue;
        const v = packed(this.codes[i]);
        for (const [dx, dy] of stamp) {
          const x = x0 + dx, y = y0 + dy;
          if (x >= 0 && y >= 0 && x < w && y < h) px[y * w + x] = v;
        }
      }
      this.painted = end;
      this.base.getContext("2d").putImageData(image, 0, 0);
      this.draw();
      if (end < order.length) requestAnimationFrame(step);
      else this.canvas.dataset.painted = String(end);
    };
    requestAnimationFrame(step);
  }

  // the base layer, then the query, its neighbours and the hovered point on top
  draw() {
    const ctx = this.ctx, dpr = window.devicePixelRatio || 1;
    ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.n) return;
    ctx.drawImage(this.base, 0, 0);
    const { query, rows } = this.highlight;
    if (query >= 0 && rows.length) {
      const [qx, qy] = this.toScreen(this.xy[2 * query], this.xy[2 * query + 1]);
      ctx.strokeStyle = "rgba(29, 29, 31, 0.35)";
      ctx.lineWidth = 1 * dpr;
      ctx.beginPath();
      for (const r of rows) {
        const [x, y] = this.toScreen(this.xy[2 * r], this.xy[2 * r + 1]);
        ctx.moveTo(qx, qy);
        ctx.lineTo(x, y);
      }
      ctx.stroke();
    }
    const ring = (i, radius, fill, width) => {
      const [x, y] = this.toScreen(this.xy[2 * i], this.xy[2 * i + 1]);
      ctx.beginPath();
      ctx.arc(x, y, radius * dpr, 0, 2 * Math.PI);
      ctx.fillStyle = fill;
      ctx.fill();
      ctx.lineWidth = width * dpr;
      ctx.strokeStyle = "#fff";
      ctx.stroke();
    };
    for (const r of rows) ring(r, 4.5, "#1d1d1f", 1.5);
    if (query >= 0) ring(query, 7, "#3c5bd6", 2.5);
    if (this.hover >= 0) {
      const [x, y] = this.toScreen(this.xy[2 * this.hover], this.xy[2 * this.hover + 1]);
      ctx.beginPath();
      ctx.arc(x, y, 8 * dpr, 0, 2 * Math.PI);
      ctx.lineWidth = 2 * dpr;
      ctx.strokeStyle = "#1d1d1f";
      ctx.stroke();
    }
  }

  _pixel(event) {
    const box = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    return [(event.clientX - box.left) * dpr, (event.clientY - box.top) * dpr];
  }

  _bind() {
    let drag = null;
    const c = this.canvas;
    c.addEventListener("mousemove", (e) => {
      const [sx, sy] = this._pixel(e);
      if (drag) {
        this.view.x = drag.vx + sx - drag.sx;
        this.view.y = drag.vy + sy - drag.sy;
        drag.moved = drag.moved || Math.abs(sx - drag.sx) + Math.abs(sy - drag.sy) > 4;
        this.repaint();
        return;
      }
      const i = this.nearest(sx, sy, 10 * (window.devicePixelRatio || 1));
      if (i !== this.hover) {
        this.hover = i;
        this.draw();
        this.onHover(i, e);
      }
      c.style.cursor = i >= 0 ? "pointer" : "grab";
    });
    c.addEventListener("mouseleave", () => { drag = null; if (this.hover >= 0) { this.hover = -1; this.draw(); this.onHover(-1); } });
    c.addEventListener("mousedown", (e) => {
      const [sx, sy] = this._pixel(e);
      drag = { sx, sy, vx: this.view.x, vy: this.view.y, moved: false };
    });
    c.addEventListener("mouseup", (e) => {
      const moved = drag && drag.moved;
      drag = null;
      if (moved) return;
      const [sx, sy] = this._pixel(e);
      const i = this.nearest(sx, sy, 10 * (window.devicePixelRatio || 1));
      if (i >= 0) this.onClick(i);
    });
    c.addEventListener("wheel", (e) => {
      e.preventDefault();
      const [sx, sy] = this._pixel(e);
      const factor = Math.exp(-e.deltaY * 0.0015);
      const scale = Math.min(200, Math.max(1, this.view.scale * factor));
      const k = scale / this.view.scale;
      // keep the point under the cursor where it is
      const cx = (this.canvas.width - this.side()) / 2, cy = (this.canvas.height - this.side()) / 2;
      this.view.x = sx - cx - (sx - cx - this.view.x) * k;
      this.view.y = sy - cy - (sy - cy - this.view.y) * k;
      this.view.scale = scale;
      if (scale === 1) { this.view.x = 0; this.view.y = 0; }
      this.repaint();
    }, { passive: false });
    c.addEventListener("dblclick", () => this.resetView());
  }
}

window.PointMap = PointMap;
window.groupCSS = groupCSS;
