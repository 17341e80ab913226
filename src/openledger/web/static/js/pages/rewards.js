// Rewards: what the account earned over time and by datanet, model and contribution; claim.
import { api } from "../api.js";
import { busy, clear, h, link, open, openNum, showError, showOk, when } from "../ui.js";
import { barChart, lineChart } from "../charts.js";
import { signedInOr } from "../app.js";

export async function render(view) {
  view.append(h("h1", {}, "Rewards"));
  if (!signedInOr(view, "see and claim your rewards")) return;
  const r = await api("/web/api/rewards");
  const e = r.earnings;
  const c = r.claimable.error ? null : r.claimable;
  const kpi = (id, label, value) => h("div", { class: "kpi" }, h("b", { id }, value), h("span", {}, label));
  const balance = kpi("balance", "OPEN balance on chain", r.balance.error ? "–" : open(r.balance));
  view.append(h("div", { class: "kpis" },
    kpi("earned", "earned, OPEN (all time)", open(e.earned)), kpi("settled", "settled in epochs", open(e.settled)),
    kpi("claimable", "claimable now", c ? open(c.claimable) : "–"), kpi("claimed", "claimed so far", c ? open(c.claimed) : "–"), balance));
  view.append(claimCard(c, r));

  let cum = 0;
  const pts = [[0, 0], ...r.timeline.map((t, i) => { cum += openNum(t.amount); return [i + 1, cum]; })];
  const labels = r.timeline.map((t) => (t.epoch === "open" ? "open epoch" : `epoch ${t.epoch}`));
  view.append(h("section", { class: "card" }, h("h2", {}, "Earnings over time (cumulative OPEN)"),
    lineChart([{ name: "cumulative", points: pts, dots: true }], { xLabel: "epoch", yLabel: "OPEN", title: "cumulative earnings" }),
    h("p", { class: "small muted" }, r.timeline.map((t, i) => `${labels[i]}: ${open(t.amount)}${t.at ? ` (${when(t.at)})` : ""}`).join(" · ") || "Nothing earned yet.")));

  const bars = (obj, names, prefix) => Object.entries(obj).map(([k, v]) => ({ label: names[k] || `${prefix}${k}`, value: openNum(v) }))
    .sort((a, b) => b.value - a.value);
  const fmt = (v) => v.toFixed(v >= 1 ? 3 : 6) + " OPEN";
  const cols = h("div", { class: "cols" });
  cols.append(h("section", { class: "card" }, h("h2", {}, "By datanet"), barChart(bars(e.by_datanet, r.names.datanet, "datanet "), { format: fmt, title: "by datanet" })),
    h("section", { class: "card" }, h("h2", {}, "By model"), barChart(bars(e.by_model, r.names.model, "model "), { format: fmt, title: "by model" })));
  view.append(cols);
  view.append(h("section", { class: "card" }, h("h2", {}, "By contribution and role"), h("div", { class: "cols" },
    h("table", { class: "small", id: "by-contribution" }, h("thead", {}, h("tr", {}, h("th", {}, "contribution"), h("th", {}, "earned, OPEN"))),
      h("tbody", {}, Object.entries(e.by_contribution).map(([k, v]) => h("tr", {}, h("td", {}, link(`#/contributions/${k}`, `#${k}`)), h("td", {}, open(v, 6)))))),
    h("table", { class: "small" }, h("thead", {}, h("tr", {}, h("th", {}, "role"), h("th", {}, "earned, OPEN"))),
      h("tbody", {}, Object.entries(e.by_role).map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, open(v, 6)))))))));
}

function claimCard(c, r) {
  const slot = h("div", { id: "claim-status", "aria-live": "polite" });
  const card = h("section", { class: "card", id: "claim" }, h("h2", {}, "Claim"));
  if (!c) { card.append(h("div", { class: "error" }, r.claimable.error)); return card; }
  if (c.pending) card.append(h("p", { class: "small muted" }, `Epoch ${c.pending.epoch}'s root becomes claimable ${when(new Date(c.pending.ready_at * 1000).toISOString())}.`));
  const b = h("button", { id: "claim-button", disabled: BigInt(c.claimable) === 0n }, BigInt(c.claimable) > 0n ? `Claim ${open(c.claimable)} OPEN` : "Nothing to claim");
  b.addEventListener("click", () => busy(b, async () => {
    clear(slot);
    try {
      // a dev account: the node sends it; a wallet: api() has the wallet send it first
      const res = await api("/web/api/claim", { method: "POST" });
      showOk(slot, `Claimed ${res.paid_open} OPEN.`);
      slot.append(h("div", { class: "small" }, "Transaction ", h("span", { class: "mono", id: "claim-tx" }, res.tx_hash)));
      document.getElementById("balance").textContent = open(res.balance);
      document.getElementById("claimable").textContent = open(res.claimable);
      document.getElementById("claimed").textContent = open(res.claimed);
      b.disabled = true;
    } catch (err) { showError(slot, err); }
  }));
  card.append(h("p", { class: "small muted" }, `Your leaf in the epoch root on chain: ${open(c.cumulative)} OPEN cumulative (epoch ${c.epoch ?? "–"}).`),
    h("div", { class: "actions" }, b), slot);
  return card;
}
