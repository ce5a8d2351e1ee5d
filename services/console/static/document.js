// One document: its metadata, original, extracted text with every chunk marked, and chunks.

import { enc, get, session } from "./api.js";
import { badge, h, table, toast } from "./dom.js";
import { collectionLink, documentHash, documentPath } from "./links.js";

export async function documentView(view, name, id, query, signal) {
  const focus = query.get("chunk");
  const base = `/v1/collections/${enc(name)}/documents/${documentPath(id)}`;
  const shown = await get(`${base}/chunks`, { signal });
  const d = shown.document;
  const download = h("button", { class: "secondary", id: "download", onclick: async () => {
    try {
      const response = await fetch(`${base}/original`, { headers: { Authorization: `Bearer ${session.key()}` } });
      if (!response.ok) throw new Error((await response.json()).error.message);
      const url = URL.createObjectURL(await response.blob());
      const link = h("a", { href: url, download: d.metadata.filename || id.split("/").pop() });
      document.body.append(link); link.click(); link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) { toast(error.message); }
  } }, "Download the original");
  const hasOriginal = d.content_type !== "text/plain" || d.metadata.filename;
  view.append(h("p", {}, collectionLink(name), " / ", id),
    h("h1", {}, d.title || id),
    h("section", { class: "card" }, h("div", { class: "row" },
      ["status", "version", "content_type", "chunks", "tokens", "embedded_chunks", "cached_chunks", "embedded_tokens"].map((f) =>
        h("div", {}, h("div", { class: "muted" }, f.replace("_", " ")), f === "status" ? badge(d[f]) : String(d[f])))),
      d.error ? h("p", { class: "error" }, `${d.error_class}: ${d.error}`) : null,
      h("p", { class: "muted" }, `source ${d.source || "–"} · accepted ${d.accepted_at} · finished ${d.finished_at || "–"}`),
      Object.keys(d.metadata).length ? h("pre", {}, JSON.stringify(d.metadata, null, 2)) : null,
      hasOriginal ? download : null));
  // The text with every chunk marked; chunks may overlap, so each character goes to the
  // first chunk that covers it. Offsets count code points, as the server does (not UTF-16).
  const text = Array.from(shown.text);
  const piece = (start, end) => text.slice(start, end).join("");
  const marks = [];
  if (shown.stale) {
    marks.push(h("p", { class: "muted" }, `Version ${d.version} is not searchable yet; these are the chunks of version ${d.indexed_version}:`));
  }
  let cursor = 0;
  shown.chunks.forEach((c, i) => {
    const title = `chunk ${c.ordinal}: characters ${c.start}–${c.end}, ${c.tokens} tokens`;
    if (shown.stale) {
      marks.push(h("mark", { class: i % 2 ? "odd" : "", id: `chunk-${c.ordinal}`, title }, c.text), "\n\n");
      return;
    }
    const start = Math.max(c.start, cursor);
    if (start > cursor) marks.push(piece(cursor, start));
    if (c.end > start) {
      const mark = h("mark", { class: i % 2 ? "odd" : "", id: `chunk-${c.ordinal}`, title }, piece(start, c.end));
      if (String(c.ordinal) === focus) mark.classList.add("focus");
      marks.push(mark);
    }
    cursor = Math.max(cursor, c.end);
  });
  if (!shown.stale && cursor < text.length) marks.push(piece(cursor, text.length));
  const where = (loc) => (!loc ? "–" : loc.page !== undefined ? `page ${loc.page}` : `${loc.start_seconds}–${loc.end_seconds} s`);
  view.append(h("section", { class: "card" }, h("h2", {}, "Extracted text and its chunks"), h("div", { class: "text-view", id: "text" }, marks)),
    h("section", { class: "card", id: "chunks" }, h("h2", {}, `Chunks (${shown.chunks.length}${shown.truncated ? "+" : ""})`), table([
      { label: "#", num: true, cell: (c) => h("a", { href: documentHash(name, id, c.ordinal) }, c.ordinal) },
      { label: "Offsets", num: true, cell: (c) => `${c.start}–${c.end}` },
      { label: "Tokens", num: true, cell: (c) => c.tokens },
      { label: "Where", cell: (c) => where(c.location) },
      { label: "Cost", num: true, cell: (c) => (c.cost_usd === null ? "–" : `$${c.cost_usd.toFixed(6)}`) },
    ], shown.chunks, "No searchable chunks (yet).")));
  if (focus !== null) document.getElementById(`chunk-${focus}`)?.scrollIntoView({ block: "center" });
}
