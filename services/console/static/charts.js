// Small SVG charts: daily bars (optionally stacked) with a line on a second axis, and the
// playground's scores against the threshold. Drawn here rather than with a library: each
// is a few dozen lines and the console then needs nothing but this package.

const NS = "http://www.w3.org/2000/svg";

function s(tag, attrs = {}, ...children) {
  const element = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) element.setAttribute(k, String(v));
  for (const child of children) {
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

// series: [{label, color, values: [number]}] stacked as bars; line: {label, color, values,
// max} on the right axis (e.g. a share 0–1).
export function dailyBars(days, series, line = null, { height = 140, width = 520 } = {}) {
  const left = 40, right = line ? 36 : 8, top = 10, bottom = 22;
  const plotW = width - left - right, plotH = height - top - bottom;
  const totals = days.map((_, i) => series.reduce((sum, one) => sum + (one.values[i] || 0), 0));
  const max = Math.max(1, ...totals);
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img" });
  const step = plotW / Math.max(1, days.length);
  svg.append(s("line", { x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH, stroke: "#c4cbd6" }));
  svg.append(s("text", { x: left - 4, y: top + 8, "text-anchor": "end" }, max.toLocaleString("en")));
  svg.append(s("text", { x: left - 4, y: top + plotH, "text-anchor": "end" }, "0"));
  days.forEach((day, i) => {
    let y = top + plotH;
    for (const one of series) {
      const value = one.values[i] || 0;
      const barH = (value / max) * plotH;
      y -= barH;
      const bar = s("rect", { x: left + i * step + 1, y, width: Math.max(1, step - 2), height: barH, fill: one.color });
      bar.append(s("title", {}, `${day} ${one.label}: ${value.toLocaleString("en")}`));
      svg.append(bar);
    }
    if (days.length <= 12 || i % Math.ceil(days.length / 8) === 0) {
      svg.append(s("text", { x: left + i * step + step / 2, y: height - 6, "text-anchor": "middle" }, day.slice(5)));
    }
  });
  if (line) {
    const lineMax = line.max || Math.max(1e-9, ...line.values.filter((v) => v !== null));
    const points = line.values
      .map((v, i) => (v === null ? null : `${left + i * step + step / 2},${top + plotH - (v / lineMax) * plotH}`))
      .filter(Boolean);
    if (points.length) {
      svg.append(s("polyline", { points: points.join(" "), fill: "none", stroke: line.color, "stroke-width": 2 }));
    }
    for (const point of points) { // a day alone draws no line: each gets a dot
      const [cx, cy] = point.split(",");
      svg.append(s("circle", { cx, cy, r: 3, fill: line.color }));
    }
    svg.append(s("text", { x: width - 4, y: top + 8, "text-anchor": "end" }, line.format ? line.format(lineMax) : lineMax));
  }
  return svg;
}

// Each result's score as a bar, the threshold as a vertical line across them.
export function scores(results, threshold, { width = 520 } = {}) {
  const rowH = 18, left = 34, right = 44;
  const height = Math.max(1, results.length) * rowH + 18;
  const plotW = width - left - right;
  const x = (v) => left + Math.max(0, Math.min(1, v)) * plotW;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", role: "img", "aria-label": "scores against the threshold" });
  results.forEach((result, i) => {
    const y = i * rowH + 4;
    const above = result.score >= threshold;
    svg.append(s("text", { x: left - 6, y: y + 11, "text-anchor": "end" }, `[${i + 1}]`));
    const bar = s("rect", { x: left, y, width: Math.max(1, x(result.score) - left), height: rowH - 6, fill: above ? "#2e7d4f" : "#b0b8c4" });
    bar.append(s("title", {}, `${result.document_id}: ${result.score.toFixed(3)}`));
    svg.append(bar);
    svg.append(s("text", { x: x(result.score) + 4, y: y + 11 }, result.score.toFixed(3)));
  });
  svg.append(s("line", { x1: x(threshold), y1: 0, x2: x(threshold), y2: height - 14, stroke: "#b3261e", "stroke-width": 2, "stroke-dasharray": "4 3", class: "threshold" }));
  svg.append(s("text", { x: x(threshold), y: height - 3, "text-anchor": "middle" }, `threshold ${threshold.toFixed(3)}`));
  return svg;
}
