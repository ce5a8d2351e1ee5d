// A collection's migrations: each with its target space, progress while it builds, the old
// and new thresholds, and the switch (activate, roll back, abandon) for admin keys. Redrawn
// every two seconds while one is building, ready or activating.

import { del, get, post } from "./api.js";
import { age, badge, h, number, replace, table, toast } from "./dom.js";

const space = (s) => `${s.embedder} · ${s.chunk_tokens}/${s.chunk_overlap} tokens`;

function progress(m) {
  const pct = m.total ? (100 * m.done) / m.total : 100;
  return h("div", {},
    h("div", { class: "bar" }, h("span", { class: "b-done", style: `width:${pct}%` })),
    h("span", { class: "muted" }, `${number(m.done)} of ${number(m.total)}`
      + (m.eta_seconds ? ` · ${age(m.eta_seconds)} left` : "")
      + ` · ${number(m.embedded)} embedded, ${number(m.cached)} cached`));
}

function threshold(m) {
  const t = m.threshold;
  const found = t.new === null ? "…" : `${t.new.toFixed(3)} (${t.method})`;
  return `${t.old.toFixed(3)} → ${found}`;
}

export async function migrationsPanel(panel, base, admin, signal, changed) {
  const { migrations } = await get(`${base}/migrations`, { signal });
  const act = (m, verb) => async () => {
    try {
      if (verb === "abandon") await del(`${base}/migrations/${m.id}`);
      else await post(`${base}/migrations/${m.id}/${verb}`);
      toast(`migration ${m.id}: ${verb} done`);
      changed();
    } catch (error) { toast(error.message); }
    migrationsPanel(panel, base, admin, signal, changed);
  };
  const actions = (m) => {
    if (!admin) return "";
    const button = (verb, label) => h("button", { class: "secondary", dataset: { action: verb }, onclick: act(m, verb) }, label);
    if (m.status === "ready") return h("span", {}, button("activate", "Activate"), " ", button("abandon", "Abandon"));
    if (m.status === "building") return button("abandon", "Abandon");
    if (m.status === "active" && m.retained_until) return button("rollback", "Roll back");
    return "";
  };
  replace(panel, h("h2", {}, "Model and chunking"), table([
    { label: "Id", num: true, cell: (m) => m.id },
    { label: "Status", cell: (m) => badge(m.status) },
    { label: "From", cell: (m) => space(m.source) },
    { label: "To", cell: (m) => space(m.target) },
    { label: "Progress", cell: progress },
    { label: "Threshold", cell: threshold },
    { label: "", cell: actions },
  ], migrations, "No migrations: POST /v1/collections/{name}/migrations builds a new space beside this one."));
  const open = migrations.some((m) => m.status === "building");
  if (open && !signal.aborted) {
    setTimeout(() => { if (!signal.aborted) migrationsPanel(panel, base, admin, signal, changed).catch(() => {}); }, 2000);
  }
}
