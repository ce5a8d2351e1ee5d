// The Groundwire console: a page per hash route, each drawn from the API with the signed-in
// key. A route's streams and timers stop when another route is opened.

import { ApiError, del, enc, get, post, session, stream, whenUnauthorised } from "./api.js";
import { dailyBars, scores } from "./charts.js";
import { age, badge, bytes, h, number, replace, table, toast } from "./dom.js";

const main = document.getElementById("main");
const signInCard = document.getElementById("sign-in");
let me = null;
let route = null; // {abort: AbortController}

whenUnauthorised(() => signOut("The key was refused: sign in again."));

function signOut(message = "") {
  session.clear();
  me = null;
  if (route) route.abort.abort();
  document.getElementById("nav").hidden = true;
  document.getElementById("sign-out").hidden = true;
  document.getElementById("who").textContent = "";
  replace(main, signInCard);
  signInCard.hidden = false;
  document.getElementById("sign-in-error").textContent = message;
}

async function signIn(key) {
  session.set(key);
  try {
    me = await get("/v1/me");
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 401)) signOut(error.message);
    return false;
  }
  const admin = me.scopes.includes("admin");
  document.querySelectorAll("[data-admin]").forEach((a) => { a.hidden = !admin; });
  document.getElementById("nav").hidden = false;
  document.getElementById("sign-out").hidden = false;
  document.getElementById("who").textContent = `${me.key_name} · ${me.workspace} · ${me.scopes.join(", ")}`;
  return true;
}

document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("key");
  if (await signIn(input.value.trim())) {
    input.value = "";
    show();
  }
});
document.getElementById("sign-out").addEventListener("click", () => signOut());
window.addEventListener("hashchange", () => show());

const isAdmin = () => me && me.scopes.includes("admin");
const canWrite = () => me && me.scopes.includes("write");

function show() {
  if (!me) return;
  if (route) route.abort.abort();
  route = { abort: new AbortController() };
  const signal = route.abort.signal;
  const [path, query = ""] = location.hash.replace(/^#\/?/, "").split("?", 2);
  const view = h("div", { id: "view" });
  replace(main, view);
  let parts;
  try {
    parts = path.split("/").map(decodeURIComponent);
  } catch {
    view.append(h("p", { class: "error", role: "alert" }, "This address names nothing here."));
    return;
  }
  let drawn;
  if (parts[0] === "c" && parts[1] && parts[2] === "d" && parts.length > 3) {
    drawn = documentView(view, parts[1], parts.slice(3).join("/"), new URLSearchParams(query), signal);
  } else if (parts[0] === "c" && parts[1]) {
    drawn = collectionView(view, parts[1], signal);
  } else if (parts[0] === "analytics") {
    drawn = analyticsView(view, signal);
  } else if (parts[0] === "keys") {
    drawn = keysView(view, signal);
  } else {
    drawn = collectionsView(view, signal);
  }
  drawn.catch((error) => {
    if (signal.aborted) return;
    view.append(h("p", { class: "error", role: "alert" }, `Could not load: ${error.message}`));
  });
}

const collectionLink = (name) => h("a", { href: `#/c/${enc(name)}` }, name);
const documentLink = (collection, id, label = id) =>
  h("a", { href: `#/c/${enc(collection)}/d/${id.split("/").map(enc).join("/")}` }, label);

// ---- collections -------------------------------------------------------------------------

async function collectionsView(view, signal) {
  view.append(h("h1", {}, "Collections"));
  const waiting = me.server_admin ? get("/v1/queues", { signal }) : null; // asked for at once
  const { collections } = await get("/v1/collections", { signal });
  const details = await Promise.all(collections.map((c) => get(`/v1/collections/${enc(c.name)}`, { signal })));
  const stage = (d, name) => d.stages.find((one) => one.stage === name) || { documents: 0, oldest_age_seconds: null };
  view.append(h("section", { class: "card" }, table(
    [
      { label: "Name", cell: (d) => collectionLink(d.name) },
      { label: "Embedder", cell: (d) => d.embedder },
      { label: "Threshold", num: true, cell: (d) => d.threshold.toFixed(3) },
      { label: "Done", num: true, cell: (d) => number(d.documents.done) },
      { label: "Queued", num: true, cell: (d) => number(d.documents.queued) },
      { label: "Processing", num: true, cell: (d) => number(d.documents.processing) },
      { label: "Failed", num: true, cell: (d) => number(d.documents.failed) },
      { label: "Chunks", num: true, cell: (d) => number(d.chunks) },
      { label: "Size", num: true, cell: (d) => bytes(d.size_bytes) },
      { label: "Oldest waiting (ingest / embed)", num: true,
        cell: (d) => `${age(stage(d, "ingest").oldest_age_seconds)} / ${age(stage(d, "embed").oldest_age_seconds)}` },
    ],
    details,
    "No collections yet.",
  )));
  if (isAdmin()) view.append(newCollectionForm());
  if (waiting) {
    const { queues } = await waiting;
    view.append(h("section", { class: "card" }, h("h2", {}, "Work queues (whole server)"), table(
      [
        { label: "Stage", cell: (q) => q.stage },
        { label: "Queue", cell: (q) => q.name },
        { label: "Messages", num: true, cell: (q) => number(q.messages) },
        { label: "Documents waiting", num: true, cell: (q) => number(q.documents) },
        { label: "Oldest", num: true, cell: (q) => age(q.oldest_age_seconds) },
      ],
      queues,
    )));
  }
}

function newCollectionForm() {
  const name = h("input", { name: "name", required: true, pattern: "[a-z0-9][a-z0-9_-]*", placeholder: "handbook" });
  const embedder = h("input", { name: "embedder", value: "local" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      try {
        await post("/v1/collections", { name: name.value, embedder: embedder.value });
        location.hash = `#/c/${enc(name.value)}`;
      } catch (failure) { error.textContent = failure.message; }
    },
  }, h("div", { class: "row" }, h("div", {}, h("label", {}, "Name"), name),
    h("div", {}, h("label", {}, "Embedder"), embedder), h("div", {}, h("button", { type: "submit" }, "Create"))), error);
  return h("section", { class: "card" }, h("h2", {}, "New collection"), form);
}

// ---- one collection ----------------------------------------------------------------------

async function collectionView(view, name, signal) {
  const base = `/v1/collections/${enc(name)}`;
  const header = h("section", { class: "card", id: "summary" });
  const ingestion = h("section", { class: "card", id: "ingestion" }, h("h2", {}, "Ingestion"));
  const failures = h("section", { class: "card", id: "failures" });
  const documents = h("section", { class: "card", id: "documents" });
  const playground = h("section", { class: "card", id: "playground" });
  const activity = h("div", { class: "log", id: "activity" });
  view.append(h("h1", {}, name), header, ingestion, playground, failures, documents,
    h("section", { class: "card" }, h("h2", {}, "Live activity"), activity));

  let collection = null;
  const drawSummary = async () => {
    collection = await get(base, { signal });
    const d = collection.documents;
    const stage = (s) => collection.stages.find((one) => one.stage === s);
    replace(header,
      h("div", { class: "row" },
        h("div", {}, h("div", { class: "muted" }, "Embedder"), collection.embedder),
        h("div", {}, h("div", { class: "muted" }, "Threshold"), collection.threshold.toFixed(3)),
        h("div", {}, h("div", { class: "muted" }, "Chunks"), number(collection.chunks)),
        h("div", {}, h("div", { class: "muted" }, "Size on disk"), bytes(collection.size_bytes))),
      h("div", { class: "row", id: "counts" },
        ["done", "queued", "processing", "failed"].map((s) =>
          h("div", {}, h("div", { class: "muted" }, s), h("strong", { dataset: { status: s } }, number(d[s]))))),
      h("p", { class: "muted" }, `Waiting: ingest ${number(stage("ingest").documents)} (oldest ${age(stage("ingest").oldest_age_seconds)}),`
        + ` embed ${number(stage("embed").documents)} (oldest ${age(stage("embed").oldest_age_seconds)})`));
  };
  const batchList = h("div", { id: "batches" });
  if (canWrite()) ingestion.append(dropZone(base, (batchId) => watchBatch(batchList, batchId, signal, true), signal));
  ingestion.append(batchList);
  const drawFailures = () => failuresPanel(failures, base, name, signal);
  const drawDocuments = () => documentsPanel(documents, base, name, signal);
  // everything the page shows, asked for at once
  const [, { batches }] = await Promise.all([
    drawSummary(), get(`${base}/batches?limit=5`, { signal }), drawFailures(), drawDocuments(),
  ]);
  for (const batch of batches) {
    if (!batch.finished) watchBatch(batchList, batch.batch_id, signal, false);
  }
  drawPlayground(playground, base, name, collection, signal);

  // Live: every document event refreshes the counts (at most twice a second) and is logged.
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(async () => {
      pending = null;
      if (signal.aborted) return;
      await Promise.all([drawSummary(), drawFailures(), drawDocuments()]).catch(() => {});
    }, 500);
  };
  stream(`${base}/events`, ({ event, data }) => {
    if (event !== "document") return;
    activity.prepend(h("div", {}, `${new Date().toLocaleTimeString()} `, documentLink(name, data.id), ` v${data.version} `,
      badge(data.status), data.error_class ? ` ${data.error_class}` : ""));
    while (activity.childElementCount > 200) activity.lastChild.remove();
    refresh();
  }, { signal, onopen: () => { activity.dataset.live = "true"; } }).catch(() => {});
}

function dropZone(base, started, signal) {
  const input = h("input", { type: "file", multiple: true, id: "file-input", hidden: true });
  const zone = h("div", { class: "drop", id: "drop" }, "Drop files here, or ",
    h("button", { type: "button", class: "secondary", onclick: () => input.click() }, "choose files"));
  const upload = async (files) => {
    for (const file of files) {
      if (signal.aborted) return;
      const form = new FormData();
      form.append("file", file, file.name);
      try {
        const accepted = await post(`${base}/files`, form);
        toast(`${file.name}: accepted`);
        started(accepted.batch_id);
      } catch (error) { toast(`${file.name}: ${error.message}`); }
    }
  };
  input.addEventListener("change", () => upload([...input.files]));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); upload([...e.dataTransfer.files]); });
  return h("div", {}, zone, input);
}

function watchBatch(list, batchId, signal, fresh) {
  const bar = h("div", { class: "bar" });
  const label = h("span", {}, "waiting for progress…");
  const row = h("div", { class: "batch", dataset: { batch: batchId } },
    h("div", { class: "muted" }, `Batch ${batchId.slice(0, 8)} · `, label), bar);
  list.prepend(row);
  const began = performance.now();
  let first = null;
  const draw = (p, finished) => {
    const settled = p.done + p.failed + p.unchanged;
    if (first === null) first = fresh ? 0 : settled;
    const seconds = (performance.now() - began) / 1000;
    const rate = seconds > 0.5 ? ((settled - first) / seconds).toFixed(1) : "–";
    const pct = (n) => `${p.total ? (100 * n) / p.total : 0}%`;
    replace(bar, h("span", { class: "b-done", style: `width:${pct(p.done)}` }),
      h("span", { class: "b-unchanged", style: `width:${pct(p.unchanged)}` }),
      h("span", { class: "b-failed", style: `width:${pct(p.failed)}` }));
    label.textContent = `${settled} of ${p.total} (${p.done} done, ${p.failed} failed, ${p.unchanged} unchanged, `
      + `${p.queued} queued, ${p.processing} processing) · ${rate} docs/s${finished ? " · finished" : ""}`;
    row.dataset.finished = finished ? "true" : "false";
  };
  stream(`/v1/batches/${batchId}/events`, ({ event, data }) => draw(data, event === "finished"), { signal, last: "finished" })
    .catch((error) => { label.textContent = error.message; });
}

async function failuresPanel(panel, base, name, signal) {
  const { documents } = await get(`${base}/documents?status=failed&limit=100`, { signal });
  const retryOne = async (id) => {
    try { await post(`${base}/documents/${id.split("/").map(enc).join("/")}/retry`); toast(`${id}: queued again`); }
    catch (error) { toast(error.message); }
  };
  replace(panel, h("h2", {}, `Failures (${documents.length})`),
    documents.length && canWrite() ? h("button", { id: "retry-all", onclick: async () => {
      try { const r = await post(`${base}/documents/retry`, {}); toast(`${r.retried} queued again`); }
      catch (error) { toast(error.message); }
    } }, "Retry all") : null,
    table([
      { label: "Document", cell: (d) => documentLink(name, d.id) },
      { label: "Class", cell: (d) => d.error_class || "–" },
      { label: "Reason", cell: (d) => d.error || "" },
      { label: "", cell: (d) => (canWrite() ? h("button", { class: "secondary", onclick: () => retryOne(d.id) }, "Retry") : "") },
    ], documents, "No failed documents."));
}

async function documentsPanel(panel, base, name, signal, after = null) {
  const query = after ? `&after=${enc(after)}` : "";
  const page = await get(`${base}/documents?limit=50${query}`, { signal });
  replace(panel, h("h2", {}, "Documents"), table([
    { label: "Id", cell: (d) => documentLink(name, d.id) },
    { label: "Title", cell: (d) => d.title || "" },
    { label: "Status", cell: (d) => badge(d.status) },
    { label: "Version", num: true, cell: (d) => d.version },
    { label: "Chunks", num: true, cell: (d) => number(d.chunks) },
    { label: "Tokens", num: true, cell: (d) => number(d.tokens) },
  ], page.documents, "No documents yet: drop a file above."),
  page.next ? h("button", { class: "secondary", onclick: () => documentsPanel(panel, base, name, signal, page.next) }, "Next page") : null);
}

function drawPlayground(panel, base, name, collection, signal) {
  const question = h("input", { id: "question", placeholder: "Ask the collection…" });
  const mode = h("select", { id: "mode" }, ["hybrid", "vector", "keyword"].map((m) => h("option", { value: m }, m)));
  const k = h("input", { id: "k", type: "number", min: 1, max: 50, value: 5 });
  const out = h("div", { id: "answer-out" });
  const run = async (kind) => {
    replace(out, h("p", { class: "muted" }, "…"));
    const body = { query: question.value, k: Number(k.value) };
    if (kind === "query") body.mode = mode.value;
    try {
      const result = await post(`${base}/${kind}`, body, { signal });
      replace(out, kind === "query" ? queryResult(result, name) : answerResult(result, name));
    } catch (error) { replace(out, h("p", { class: "error", role: "alert" }, error.message)); }
  };
  replace(panel, h("h2", {}, "Search and answer"),
    h("form", { onsubmit: (e) => { e.preventDefault(); run("query"); } },
      h("div", { class: "row" }, h("div", { class: "wide" }, h("label", { for: "question" }, "Question"), question),
        h("div", {}, h("label", { for: "mode" }, "Mode"), mode), h("div", {}, h("label", { for: "k" }, "k"), k)),
      h("button", { type: "submit", id: "search" }, "Search"), " ",
      collection.answer_model ? h("button", { type: "button", class: "secondary", id: "ask", onclick: () => run("answer") }, "Answer") : null),
    out);
}

function groundedBadge(result) {
  return result.grounded ? h("span", { class: "badge grounded", id: "grounded" }, "grounded")
    : h("span", { class: "badge nothing", id: "grounded" }, "nothing relevant");
}

function queryResult(result, name) {
  if (!result.grounded) {
    const best = result.best_score === null ? "no passage matched" : `best score ${result.best_score.toFixed(3)}`;
    return h("div", {}, h("p", { class: "nothing", id: "nothing-relevant" },
      `Nothing relevant: ${best}, under the threshold ${result.threshold.toFixed(3)}.`));
  }
  return h("div", {}, h("p", {}, groundedBadge(result), ` ${result.results.length} passages, mode ${result.mode}`),
    scores(result.results, result.threshold),
    result.results.map((p, i) => h("div", { class: "passage" },
      h("strong", {}, `[${i + 1}] `), documentLink(name, p.document_id, p.title || p.document_id),
      h("span", { class: "muted" }, ` score ${p.score.toFixed(3)} · chunk ${p.chunk.ordinal}`),
      " ", h("a", { href: `#/c/${enc(name)}/d/${p.document_id.split("/").map(enc).join("/")}?chunk=${p.chunk.ordinal}` }, "open passage"),
      h("p", {}, p.text))));
}

function answerResult(result, name) {
  return h("div", {}, h("p", {}, groundedBadge(result), ` ${result.status}`),
    h("p", {}, result.answer),
    result.citations.map((c) => h("div", { class: "passage" }, h("strong", {}, `[${c.n}] `),
      h("a", { href: `#/c/${enc(name)}/d/${c.document_id.split("/").map(enc).join("/")}?chunk=${(c.chunk.ordinals || [0])[0]}` },
        c.title || c.document_id), h("span", { class: "muted" }, ` score ${c.score.toFixed(3)}`))));
}

// ---- one document ------------------------------------------------------------------------

async function documentView(view, name, id, query, signal) {
  const focus = query.get("chunk");
  const base = `/v1/collections/${enc(name)}/documents/${id.split("/").map(enc).join("/")}`;
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
      { label: "#", num: true, cell: (c) => h("a", { href: `#/c/${enc(name)}/d/${id.split("/").map(enc).join("/")}?chunk=${c.ordinal}` }, c.ordinal) },
      { label: "Offsets", num: true, cell: (c) => `${c.start}–${c.end}` },
      { label: "Tokens", num: true, cell: (c) => c.tokens },
      { label: "Where", cell: (c) => where(c.location) },
      { label: "Cost", num: true, cell: (c) => (c.cost_usd === null ? "–" : `$${c.cost_usd.toFixed(6)}`) },
    ], shown.chunks, "No searchable chunks (yet).")));
  if (focus !== null) document.getElementById(`chunk-${focus}`)?.scrollIntoView({ block: "center" });
}

// ---- analytics ---------------------------------------------------------------------------

async function analyticsView(view, signal) {
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

// ---- keys and webhooks -------------------------------------------------------------------

async function keysView(view, signal) {
  view.append(h("h1", {}, "Keys and webhooks"));
  const keys = h("section", { class: "card", id: "keys" });
  const hooks = h("section", { class: "card", id: "webhooks" });
  view.append(keys, hooks);
  const drawKeys = async (secret = null) => {
    const listed = await get("/v1/keys", { signal });
    const name = h("input", { id: "key-name", required: true, placeholder: "support-bot" });
    const scope = h("select", { id: "key-scope" }, ["read", "write", "admin"].map((s) => h("option", { value: s }, s)));
    replace(keys, h("h2", {}, "API keys"), table([
      { label: "Name", cell: (k) => k.name },
      { label: "Prefix", cell: (k) => k.prefix },
      { label: "Scopes", cell: (k) => k.scopes.join(", ") },
      { label: "Collections", cell: (k) => (k.collections ? k.collections.join(", ") : "all") },
      { label: "Last used", cell: (k) => k.last_used_at || "never" },
      { label: "", cell: (k) => h("button", { class: "secondary", onclick: async () => {
        if (!confirm(`Revoke ${k.name}?`)) return;
        await del(`/v1/keys/${k.id}`).catch((e) => toast(e.message));
        drawKeys();
      } }, "Revoke") },
    ], listed.keys, "No keys of this workspace yet."),
    h("form", { id: "new-key-form", onsubmit: async (e) => {
      e.preventDefault();
      try {
        const made = await post("/v1/keys", { name: name.value, scopes: [scope.value] });
        drawKeys(made.key);
      } catch (error) { toast(error.message); }
    } }, h("div", { class: "row" }, h("div", {}, h("label", { for: "key-name" }, "Name"), name),
      h("div", {}, h("label", { for: "key-scope" }, "Scope"), scope),
      h("div", {}, h("button", { type: "submit" }, "Create key")))),
    secret ? h("div", { id: "new-key" }, h("p", {}, "The new key, shown this once:"), h("div", { class: "secret" }, secret)) : null);
  };
  const drawHooks = async () => {
    const { webhooks } = await get("/v1/webhooks", { signal });
    const rows = await Promise.all(webhooks.map(async (w) => ({ ...w, log: (await get(`/v1/webhooks/${w.id}/deliveries?limit=20`, { signal })).deliveries })));
    replace(hooks, h("h2", {}, "Webhooks"), table([
      { label: "URL", cell: (w) => w.url },
      { label: "Events", cell: (w) => w.events.join(", ") },
      { label: "Collections", cell: (w) => (w.collections ? w.collections.join(", ") : "all") },
      { label: "Recent deliveries", cell: (w) => w.log.slice(0, 5).map((d) => h("div", {}, badge(d.status), ` ${d.event_type} · ${d.attempts} tries · `
        + `${d.last_status_code ?? d.last_error ?? "–"}${d.last_latency_ms !== null ? ` · ${d.last_latency_ms.toFixed(0)} ms` : ""}`)) },
      { label: "", cell: (w) => h("button", { class: "secondary", onclick: async () => {
        if (!confirm(`Delete the webhook to ${w.url}?`)) return;
        await del(`/v1/webhooks/${w.id}`).catch((e) => toast(e.message)); drawHooks();
      } }, "Delete") },
    ], rows, "No webhooks."));
  };
  await Promise.all([drawKeys(), drawHooks()]);
}

// ---- start -------------------------------------------------------------------------------

(async () => {
  if (session.key() && (await signIn(session.key()))) show();
  else signOut();
})();
