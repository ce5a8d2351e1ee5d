// The Groundwire console: a page per hash route, each drawn from the API with the signed-in
// key. A route's streams and timers stop when another route is opened.

import { analyticsView } from "./analytics.js";
import { ApiError, enc, get, post, session, stream, whenUnauthorised } from "./api.js";
import { scores } from "./charts.js";
import { documentView } from "./document.js";
import { age, badge, bytes, h, number, replace, table, toast } from "./dom.js";
import { keysView } from "./keys.js";
import { collectionLink, documentHash, documentLink, documentPath } from "./links.js";
import { migrationsPanel } from "./migrations.js";

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
  const migrations = h("section", { class: "card", id: "migrations" });
  const activity = h("div", { class: "log", id: "activity" });
  view.append(h("h1", {}, name), header, ingestion, playground, failures, documents, migrations,
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
    migrationsPanel(migrations, base, isAdmin(), signal, () => drawSummary()),
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
    try { await post(`${base}/documents/${documentPath(id)}/retry`); toast(`${id}: queued again`); }
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
      " ", h("a", { href: documentHash(name, p.document_id, p.chunk.ordinal) }, "open passage"),
      h("p", {}, p.text))));
}

function answerResult(result, name) {
  return h("div", {}, h("p", {}, groundedBadge(result), ` ${result.status}`),
    h("p", {}, result.answer),
    result.citations.map((c) => h("div", { class: "passage" }, h("strong", {}, `[${c.n}] `),
      h("a", { href: documentHash(name, c.document_id, (c.chunk.ordinals || [0])[0]) },
        c.title || c.document_id), h("span", { class: "muted" }, ` score ${c.score.toFixed(3)}`))));
}

// ---- start -------------------------------------------------------------------------------

(async () => {
  if (session.key() && (await signIn(session.key()))) show();
  else signOut();
})();
