// Charts of the analytics views' daily series, and the knowledge gaps.

import { get } from "./api.js";
import { dailyBars } from "./charts.js";
import { h, table } from "./dom.js";
import { collectionLink } from "./links.js";

export async function analyticsView(view, signal) {
  view.append(h("h1", {}, "Analytics (last 30 days)"));
  const daily = await get("/v1/analytics/daily?days=30", { signal });
  const days = [];
  for (let i = daily.days - 1; i >= 0; i -= 1) days.push(new Date(Date.now() - i * 86400000).toISOString().slice(0, 10));
  const on = (rows, field) => days.map((day) => { const row = rows.find((r) => r.day === day); return row ? row[field] : 0; });
  const onOrNull = (rows, field) => days.map((day) => { const row = rows.find((r) => r.day === day); return row ? row[field] : null; });
  const chart = (title, svg) => h("div", { class: "card" }, h("div", { class: "chart-title" }, title), svg);
  view.append(h("div", { class: "grid2" },
    chart("Documents ingested per day (done, failed)", dailyBars(days, [
      { label: "done", color: "#2e7d4f", values: on(daily.ingest, "done") },
      { label: "failed", color: "#b3261e", values: on(daily.ingest, "failed") }])),
    chart("Embedding tokens per day (line: estimated cost, USD)", dailyBars(days, [
      { label: "tokens", color: "#1f5f8b", values: on(daily.embedding, "tokens") }],
      { label: "cost", color: "#9a6700", values: onOrNull(daily.embedding, "estimated_cost_usd"), format: (v) => `$${Number(v).toFixed(4)}` })),
    chart("Queries per day (line: grounded share)", dailyBars(days, [
      { label: "queries", color: "#5d6878", values: on(daily.queries, "queries") }],
      { label: "grounded", color: "#2e7d4f", values: onOrNull(daily.queries, "grounded_rate"), max: 1, format: () => "100%" }))));
  view.append(h("section", { class: "card", id: "gaps" }, h("h2", {}, "Knowledge gaps: asked, answered \"nothing relevant\""), table([
    { label: "Collection", cell: (g) => collectionLink(g.collection) },
    { label: "Question", cell: (g) => g.question || h("span", { class: "muted" }, "(only its hash is kept)") },
    { label: "Times", num: true, cell: (g) => g.times_asked },
    { label: "Best score seen", num: true, cell: (g) => (g.best_score_seen === null ? "–" : g.best_score_seen.toFixed(3)) },
    { label: "Last asked", cell: (g) => g.last_asked },
  ], daily.knowledge_gaps, "No unanswered questions.")));
}
