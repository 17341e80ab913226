// One contribution: status, stake, reviews and its records; ?hl=TEXT marks a span in them.
import { api } from "../api.js";
import { badge, busy, h, link, open, short, showError, showOk, when } from "../ui.js";
import { me } from "../state.js";

function marked(text, hl) {
  if (!hl) return [text];
  const i = text.indexOf(hl);
  if (i < 0) return [text];
  return [text.slice(0, i), h("mark", { class: "span" }, hl), text.slice(i + hl.length)];
}

function recordText(content) {
  if (content.text) return content.text;
  if (content.prompt !== undefined) return `${content.prompt}\n→ ${content.completion}`;
  if (content.messages) return content.messages.map((m) => `${m.role || m[0]}: ${m.content || m[1]}`).join("\n");
  return JSON.stringify(content);
}

export async function render(view, route) {
  const id = route.args[0];
  const hl = route.query.get("hl");
  // signed in, the records are read as the account (a priced datanet's records are for its
  // owner, validators, contributors and the accounts that paid for an export)
  const c = await api(me() ? `/web/api/contributions/${encodeURIComponent(id)}?limit=500`
    : `/datanets/_/contributions/${encodeURIComponent(id)}?limit=500`);
  view.append(h("p", { class: "small" }, link(`#/datanets/${encodeURIComponent(c.datanet)}`, `← ${c.datanet}`)));
  view.append(h("h1", { id: "contribution-title", "data-id": c.id }, `Contribution #${c.id}`, " ", badge(c.status)));
  view.append(h("div", { class: "kpis" },
    h("div", { class: "kpi" }, h("b", { class: "mono", title: c.contributor }, short(c.contributor)), h("span", {}, "contributor")),
    h("div", { class: "kpi" }, h("b", {}, c.record_count), h("span", {}, "records")),
    h("div", { class: "kpi" }, h("b", {}, open(c.stake)), h("span", {}, "stake, OPEN")),
    h("div", { class: "kpi" }, h("b", {}, `${c.approvals} / ${c.rejections}`), h("span", {}, "approvals / rejections")),
    c.slashed !== "0" ? h("div", { class: "kpi" }, h("b", {}, open(c.slashed)), h("span", {}, "slashed, OPEN")) : null));
  view.append(h("section", { class: "card" }, h("h2", {}, "On chain"),
    h("div", { class: "small" }, "Merkle root ", h("span", { class: "mono" }, c.root)),
    h("div", { class: "small" }, "transaction ", h("span", { class: "mono" }, c.tx_hash)),
    h("div", { class: "small" }, "submitted ", when(c.created_at), c.decided_at ? ` · decided ${when(c.decided_at)}` : "")));
  if (me() && me().address === c.contributor && c.status !== "pending" && !c.withdrawn) {
    const slot = h("div", { id: "withdraw-status", "aria-live": "polite" });
    const b = h("button", { class: "secondary", id: "withdraw-stake" }, "Withdraw my stake");
    b.addEventListener("click", () => busy(b, async () => {
      try {
        const r = await api(`/web/api/contributions/${c.id}/withdraw`, { method: "POST" });
        showOk(slot, `Withdrew ${open(r.amount)} OPEN (transaction ${short(r.withdraw_tx)}).`);
      } catch (err) { showError(slot, err); }
    }));
    view.append(h("section", { class: "card" }, h("h2", {}, "Your stake"),
      h("p", { class: "small muted" }, c.status === "approved"
        ? `Unlocks ${when(new Date(c.unlock_at * 1000).toISOString())}.`
        : `Rejected: ${open(c.slashed)} OPEN was slashed; the rest can be withdrawn.`), b, slot));
  }
  if (c.reviews.length) {
    view.append(h("section", { class: "card" }, h("h2", {}, "Reviews"), h("ul", {}, c.reviews.map((r) =>
      h("li", {}, h("span", { class: "mono" }, short(r.validator)), " ", badge(r.approve ? "approved" : "rejected"),
        r.reason ? ` — ${r.reason}` : "")))));
  }
  const recs = h("section", { class: "card", id: "records" }, h("h2", {}, "Records"));
  if (hl) recs.append(h("p", { class: "small notice" }, "The highlighted text is the span a model's answer matched."));
  const withheld = c.records.withheld;
  if (withheld) {
    recs.append(h("p", { class: "notice", id: "records-withheld" }, `${withheld.message} `,
      withheld.version ? link(`#/datanets/${encodeURIComponent(c.datanet)}`, `Pay ${open(withheld.price)} OPEN to export it`) : withheld.fix,
      me() ? null : [" (", link("#/signin", "sign in"), " first)"]));
  }
  for (const r of c.records.items) {
    const text = recordText(r.content);
    const hit = hl && text.includes(hl);
    recs.append(h("div", { class: "preview record" + (hit ? " hl" : ""), "data-position": r.position, id: `record-${r.position}` },
      h("div", { class: "small muted" }, `${r.location} · ${r.kind}`), h("div", {}, marked(text, hl))));
  }
  view.append(recs);
  const first = recs.querySelector(".record.hl");
  if (first) first.scrollIntoView({ block: "center" });
}
