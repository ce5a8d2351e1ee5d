// The workspace's API keys (made, shown once, revoked) and its webhooks with their deliveries.

import { del, get, post } from "./api.js";
import { badge, h, replace, table, toast } from "./dom.js";

export async function keysView(view, signal) {
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
