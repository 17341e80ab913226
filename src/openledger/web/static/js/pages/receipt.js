// One signed receipt: what was paid, to whom and why, and whether it proves itself.
import { api } from "../api.js";
import { badge, h, link, open, pct, short, when } from "../ui.js";

export async function render(view, route) {
  const id = route.args[0];
  const [doc, check] = await Promise.all([api(`/receipts/${encodeURIComponent(id)}`),
    api(`/web/api/receipts/${encodeURIComponent(id)}/check`)]);
  const r = doc.receipt;
  view.append(h("h1", {}, "Receipt ", badge(doc.epoch ? "settled" : "pending")));
  // the public id (rc_…) is what the payer shares; the sequence number is its place in the chain
  view.append(h("p", { class: "small muted", id: "receipt-ids" }, "Public id ",
    h("span", { class: "mono", id: "receipt-id" }, doc.id), ` · number ${doc.seq} in this node's receipt chain`));
  view.append(h("div", { id: "receipt-check", class: check.ok ? "ok" : "error" }, check.ok
    ? `Verified: its content and chain hashes check out, up to a head signed by the operator ${check.operator}.`
    : `Does not verify: ${check.problem}.`));
  const kpi = (label, value) => h("div", { class: "kpi" }, h("b", {}, value), h("span", {}, label));
  view.append(h("div", { class: "kpis" },
    kpi("fee, OPEN", open(r.fee, 8)), kpi("model", r.model.name), kpi("payer", short(r.payer)),
    kpi("tokens in / out", `${r.tokens.prompt} / ${r.tokens.completion}`),
    kpi("epoch", doc.epoch ?? "not yet settled")));
  const rows = r.payouts.map((p) => h("tr", {}, h("td", {}, p.role), h("td", { class: "mono" }, short(p.account)),
    h("td", {}, p.contribution ? link(`#/contributions/${p.contribution}`, `#${p.contribution}`) : "–"),
    h("td", {}, open(p.amount, 8))));
  for (const [role, amount] of Object.entries(r.pools || {})) {
    rows.push(h("tr", {}, h("td", {}, `${role} (pooled)`), h("td", {}, "divided at the epoch's seal"), h("td", {}, "–"), h("td", {}, open(amount, 8))));
  }
  view.append(h("section", { class: "card" }, h("h2", {}, "Where the fee went"), h("div", { class: "table-wrap" },
    h("table", { class: "small", id: "payouts" }, h("thead", {}, h("tr", {}, h("th", {}, "role"), h("th", {}, "account"), h("th", {}, "contribution"), h("th", {}, "OPEN"))),
      h("tbody", {}, rows)))));
  const a = r.attribution || {};
  if (a.shares && a.shares.length) {
    view.append(h("section", { class: "card" }, h("h2", {}, `Attribution (${a.method})`),
      h("table", { class: "small" }, h("tbody", {}, a.shares.map((s) => h("tr", {},
        h("td", {}, link(`#/contributions/${s.contribution}`, `#${s.contribution}`)),
        h("td", {}, pct((s.weight_ppb ?? 0) / 1e9))))))));
  }
  view.append(h("section", { class: "card" }, h("h2", {}, "Proof"),
    h("div", { class: "small" }, "created ", when(r.created_at)),
    h("div", { class: "small" }, "hash ", h("span", { class: "mono" }, doc.hash)),
    h("div", { class: "small" }, "content hash ", h("span", { class: "mono" }, doc.content_hash || "–")),
    h("p", { class: "small" }, link(`/receipts/${doc.id}`, "The receipt as JSON", { id: "receipt-json" }), " — check it offline with the operator's address.")));
}
