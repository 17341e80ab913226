// Charts as inline SVG (no library): lines over x, horizontal bars.
const NS = "http://www.w3.org/2000/svg";
export const COLORS = ["#1f8a70", "#d1495b", "#2e6fdb", "#edae49", "#7a4fb5", "#00798c", "#8a6d3b", "#555"];

function s(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceTicks(min, max, n = 4) {
  if (min === max) { max = min + 1; }
  const step = Math.pow(10, Math.floor(Math.log10((max - min) / n)));
  const err = ((max - min) / n) / step;
  const mult = err >= 7 ? 10 : err >= 3 ? 5 : err >= 1.5 ? 2 : 1;
  const st = step * mult, out = [];
  for (let v = Math.ceil(min / st) * st; v <= max + 1e-12; v += st) out.push(+v.toFixed(10));
  return out;
}

function fmt(v) {
  const a = Math.abs(v);
  if (Number.isInteger(v)) return v.toLocaleString("en");
  if (a >= 1000) return v.toLocaleString("en", { maximumFractionDigits: 0 });
  if (a >= 10) return v.toFixed(1).replace(/\.0$/, "");
  if (a >= 1) return v.toFixed(2).replace(/0$/, "");
  return v.toPrecision(2);
}

// series: [{name, points: [[x, y], ...], color}]
export function lineChart(series, { width = 640, height = 240, xLabel = "", yLabel = "", title = "" } = {}) {
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart line", role: "img",
                         "aria-label": title || yLabel });
  const pts = series.flatMap((x) => x.points);
  const m = { l: 52, r: 12, t: 12, b: 34 };
  if (!pts.length) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no data yet"));
    return svg;
  }
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x0 === x1) x1 = x0 + 1;
  const pad = (y1 - y0) * 0.08 || Math.abs(y1) * 0.1 || 1; y0 -= pad; y1 += pad;
  const X = (x) => m.l + ((x - x0) / (x1 - x0)) * (width - m.l - m.r);
  const Y = (y) => height - m.b - ((y - y0) / (y1 - y0)) * (height - m.t - m.b);
  for (const t of niceTicks(y0, y1)) {
    svg.append(s("line", { x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t), stroke: "#e3e9e6" }));
    svg.append(s("text", { x: m.l - 6, y: Y(t) + 4, "text-anchor": "end" }, fmt(t)));
  }
  const wholeX = pts.every((p) => Number.isInteger(p[0]));
  for (const t of niceTicks(x0, x1, 6).filter((t) => !wholeX || Number.isInteger(t))) {
    svg.append(s("text", { x: X(t), y: height - m.b + 16, "text-anchor": "middle" }, fmt(t)));
  }
  svg.append(s("line", { x1: m.l, x2: m.l, y1: m.t, y2: height - m.b, stroke: "#9aa8a3" }));
  svg.append(s("line", { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b, stroke: "#9aa8a3" }));
  if (xLabel) svg.append(s("text", { x: width - m.r, y: height - 4, "text-anchor": "end" }, xLabel));
  if (yLabel) svg.append(s("text", { x: 4, y: 10 }, yLabel));
  series.forEach((ser, i) => {
    const color = ser.color || COLORS[i % COLORS.length];
    const p = ser.points;
    if (!p.length) return;
    const d = p.map((q, j) => `${j ? "L" : "M"}${X(q[0]).toFixed(1)},${Y(q[1]).toFixed(1)}`).join("");
    svg.append(s("path", { d, fill: "none", stroke: color, "stroke-width": 2, "data-series": ser.name }));
    if (p.length <= 40 || ser.dots) {
      for (const q of p) svg.append(s("circle", { cx: X(q[0]), cy: Y(q[1]), r: 2.6, fill: color }));
    }
  });
  return svg;
}

export function legend(series) {
  const el = document.createElement("div");
  el.className = "legend";
  series.forEach((ser, i) => {
    const item = document.createElement("span");
    const sw = document.createElement("i");
    sw.style.background = ser.color || COLORS[i % COLORS.length];
    item.append(sw, ser.name);
    el.append(item);
  });
  return el;
}

// items: [{label, value, note}] -> horizontal bars (value as a fraction of the largest, or of `total`)
export function barChart(items, { width = 400, total = null, format = (v) => String(v), title = "" } = {}) {
  const row = 26, lw = Math.min(170, width * 0.34), height = Math.max(row * items.length + 6, 30);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart bars", role: "img", "aria-label": title });
  const max = total ?? Math.max(1e-12, ...items.map((i) => i.value));
  items.forEach((it, i) => {
    const y = 3 + i * row, w = Math.max(1, ((width - lw - 120) * it.value) / max);
    svg.append(s("text", { x: lw - 6, y: y + 16, "text-anchor": "end" }, it.label));
    svg.append(s("rect", { x: lw, y: y + 4, width: w, height: 16, rx: 3,
                           fill: it.color || COLORS[i % COLORS.length] }));
    svg.append(s("text", { x: lw + w + 6, y: y + 16 }, format(it.value)));
  });
  return svg;
}
