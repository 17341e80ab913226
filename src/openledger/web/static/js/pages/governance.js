// Governance and OpenCircle grants: proposals with their state, tallies and countdowns;
// vote, delegate, propose, queue, execute; grant applications and their milestones.
import { api } from "../api.js";
import { badge, busy, duration, errorBox, field, h, open, openNum, short, showError, showOk, when } from "../ui.js";
import { barChart } from "../charts.js";
import { me } from "../state.js";
import { onLeave } from "../app.js";

export async function render(view) {
  view.append(h("h1", {}, "Governance and grants"));
  let overview;
  try { overview = await api("/governance"); } catch (err) {
    view.append(errorBox(err, err.status === 404 ? "Governance" : null)); return;
  }
  const [proposals, grants] = await Promise.all([api("/governance/proposals"), api("/grants")]);
  const mine = me() ? await api("/web/api/governance/me") : null;
  const chainNow = (mine && typeof mine.now === "number") ? mine.now : (proposals.items[0] ? proposals.items[0].now : Date.now() / 1000);
  const t0 = Date.now() / 1000;
  const now = () => chainNow + (Date.now() / 1000 - t0);
  const k = overview.keys;
  const kpi = (label, value, id) => h("div", { class: "kpi" }, h("b", { id }, value), h("span", {}, label));
  view.append(h("div", { class: "kpis" },
    kpi("treasury, OPEN", open(overview.treasury_balance)),
    kpi("voting delay", k.voting_delay ? k.voting_delay.shown : "–"),
    kpi("voting period", k.voting_period ? k.voting_period.shown : "–"),
    kpi("quorum", k.quorum_bps ? k.quorum_bps.shown : "–"),
    kpi("timelock delay", k.timelock_delay ? k.timelock_delay.shown : "–"),
    mine ? kpi("your voting power, OPEN", open(mine.votes), "my-votes") : null));
  if (!overview.handed_over) view.append(h("p", { class: "small notice" }, "This deployment predates governance: its parameters and treasury are still owned by the operator until `openledger gov handover` hands them to the Timelock; until then executed proposals cannot change them."));

  const list = h("section", { id: "proposals" }, h("h2", {}, `Proposals (${proposals.total})`));
  if (!proposals.items.length) list.append(h("p", { class: "muted" }, "No proposal yet."));
  const clocks = [];
  for (const p of proposals.items) list.append(proposalCard(p, now, clocks));
  const timer = setInterval(() => clocks.forEach((f) => f()), 1000);
  onLeave(() => clearInterval(timer));
  view.append(list);
  if (me()) view.append(h("div", { class: "cols" }, delegateCard(), proposeCard(overview)));
  view.append(grantsSection(grants));
}

function countdown(p, now) {
  const t = now();
  if (p.state === "pending") return `voting opens in ${duration(p.snapshot - t)}`;
  if (p.state === "active") return `voting closes in ${duration(p.deadline - t)}`;
  if (p.state === "queued" && p.eta) return p.eta > t ? `executable in ${duration(p.eta - t)}` : "executable now";
  return `voting ended ${when(new Date(p.deadline * 1000).toISOString())}`;
}

function proposalCard(p, now, clocks) {
  const slot = h("div", { "aria-live": "polite" });
  const clock = h("span", { class: "countdown small" }, countdown(p, now));
  clocks.push(() => { clock.textContent = countdown(p, now); });
  const tally = ["for", "against", "abstain"].map((s, i) => ({ label: s, value: openNum(p.votes[s]), color: ["#1f8a70", "#d1495b", "#9aa8a3"][i] }));
  const card = h("section", { class: "card proposal", "data-id": p.id, "data-state": p.state },
    h("h3", {}, `#${p.id} `, badge(p.state), " ", clock),
    h("p", {}, p.description || "(no description)"),
    h("ul", { class: "small" }, p.calls.map((c) => h("li", {}, c))),
    barChart(tally, { format: (v) => `${v.toLocaleString("en")} OPEN`, title: "votes" }),
    h("p", { class: "small muted" }, `Quorum: ${p.quorum ? open(p.quorum) + " OPEN" : "set at the snapshot"} · proposed by `,
      h("span", { class: "mono" }, short(p.proposer))));
  const act = (label, path, body, cls = "") => {
    const b = h("button", { class: cls, "data-action": label }, label);
    b.addEventListener("click", () => busy(b, async () => {
      try {
        const r = await api(path, { method: "POST", json: body });
        showOk(slot, `Done (transaction ${short(r.tx_hash)}). State: ${r.state}; for ${open(r.votes.for)}, against ${open(r.votes.against)}, abstain ${open(r.votes.abstain)}.`);
      } catch (err) { showError(slot, err); }
    }));
    return b;
  };
  if (me()) {
    const buttons = h("div", { class: "actions" });
    if (p.state === "active" || p.state === "pending") {
      buttons.append(act("Vote for", `/web/api/governance/proposals/${p.id}/votes`, { support: "for" }),
        act("Vote against", `/web/api/governance/proposals/${p.id}/votes`, { support: "against" }, "danger"),
        act("Abstain", `/web/api/governance/proposals/${p.id}/votes`, { support: "abstain" }, "secondary"));
    }
    if (p.state === "succeeded") buttons.append(act("Queue", `/web/api/governance/proposals/${p.id}/queue`, {}));
    if (p.state === "queued") buttons.append(act("Execute", `/web/api/governance/proposals/${p.id}/execute`, {}));
    card.append(buttons);
  }
  card.append(slot);
  return card;
}

function delegateCard() {
  const slot = h("div", { id: "delegate-status", "aria-live": "polite" });
  const b = h("button", { type: "submit", id: "delegate-submit" }, "Delegate");
  const form = h("form", { id: "delegate-form" },
    field({ label: "Delegate my votes to", name: "delegatee", help: "An address or account name; empty: yourself. Votes count from the next second, for proposals made after.", attrs: { placeholder: "yourself" } }),
    h("div", { class: "actions" }, b), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(b, async () => {
      try {
        const r = await api("/web/api/governance/delegate", { method: "POST", json: { delegatee: form.delegatee.value } });
        showOk(slot, `Delegated to ${short(r.delegatee)}: it now has ${open(r.votes)} OPEN of votes.`);
        const mine = document.getElementById("my-votes");
        if (mine && r.delegatee === me().address) mine.textContent = open(r.votes);
      } catch (err) { showError(slot, err); }
    });
  });
  return h("section", { class: "card" }, h("h2", {}, "Delegate"), form);
}

function proposeCard(overview) {
  const slot = h("div", { id: "propose-status", "aria-live": "polite" });
  const b = h("button", { type: "submit", id: "propose-submit" }, "Propose");
  const keys = Object.keys(overview.keys).filter((k) => !["guardian", "grants_committee"].includes(k));
  const form = h("form", { id: "propose-form" },
    field({ label: "Parameter", name: "key", options: keys.map((k) => [k, `${k} (now ${overview.keys[k].shown})`]), help: "Every governable setting, with its current value." }),
    field({ label: "New value", name: "value", attrs: { required: true }, help: "Checked against the setting's bounds before anything is sent." }),
    field({ label: "Why", name: "description", type: "textarea" }),
    h("div", { class: "actions" }, b), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(b, async () => {
      try {
        const r = await api("/web/api/governance/proposals", { method: "POST", json: { set: { [form.key.value]: form.value.value }, description: form.description.value } });
        showOk(slot, `Proposal #${r.id} made; voting opens ${when(new Date(r.snapshot * 1000).toISOString())}.`);
      } catch (err) { showError(slot, err); }
    });
  });
  return h("section", { class: "card" }, h("h2", {}, "Propose a change"), form);
}

function grantsSection(grants) {
  const sec = h("section", { id: "grants" }, h("h2", {}, "OpenCircle grants"));
  sec.append(h("p", { class: "small muted" }, grants.tiers.map((t) => `${t.name}: ${open(t.min)}–${open(t.max)} OPEN`).join(" · ")));
  const list = h("div", { class: "grid", id: "grant-list" });
  if (!grants.items.length) list.append(h("p", { class: "muted" }, "No application yet."));
  for (const g of grants.items) {
    const slot = h("div", { "aria-live": "polite" });
    const done = g.milestones.slice(0, g.next_milestone).length;
    const card = h("div", { class: "card grant", "data-id": g.id },
      h("h3", {}, `Grant #${g.id} `, badge(g.status)),
      h("div", { class: "small" }, `${g.tier} · ${open(g.amount)} OPEN · by `, h("span", { class: "mono" }, short(g.applicant))),
      h("div", { class: "progress", role: "progressbar", "aria-label": "released", "aria-valuenow": Math.round(100 * openNum(g.released) / Math.max(openNum(g.amount), 1e-18)), "aria-valuemin": 0, "aria-valuemax": 100 },
        h("div", { style: `width:${(100 * openNum(g.released) / Math.max(openNum(g.amount), 1e-18)).toFixed(1)}%` })),
      h("ol", { class: "small" }, g.milestones.map((m, i) => h("li", {}, `${open(m)} OPEN `, i < done ? badge("released", "approved") : ""))),
      g.metadata_uri ? h("div", { class: "small mono" }, g.metadata_uri) : null);
    if (me() && g.status === "pending") {
      const b = h("button", { class: "secondary" }, "Propose approval");
      b.addEventListener("click", () => busy(b, async () => {
        try { const r = await api(`/web/api/grants/${g.id}/approve`, { method: "POST" }); showOk(slot, `Proposal #${r.proposal.id} asks to approve it.`); }
        catch (err) { showError(slot, err); }
      }));
      card.append(b);
    }
    card.append(slot);
    list.append(card);
  }
  sec.append(list);
  if (me()) sec.append(applyForm(grants));
  return sec;
}

function applyForm(grants) {
  const slot = h("div", { id: "apply-status", "aria-live": "polite" });
  const b = h("button", { type: "submit", id: "apply-submit" }, "Apply");
  const form = h("form", { id: "apply-form" },
    h("div", { class: "row inline" },
      field({ label: "Tier", name: "tier", options: grants.tiers.map((t) => [t.name, `${t.name} (${open(t.min)}–${open(t.max)} OPEN)`]) }),
      field({ label: "Amount (OPEN)", name: "amount", type: "number", value: 30000, attrs: { min: 0, step: "any", required: true } })),
    field({ label: "Milestones (OPEN each, comma-separated)", name: "milestones", value: "10000, 20000", help: "1 to 8 amounts that sum to the amount; each is paid when released." }),
    field({ label: "Proposal document (URI)", name: "metadata_uri", help: "Where the plan is written up, e.g. ipfs://…" }),
    h("div", { class: "actions" }, b), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(b, async () => {
      try {
        const g = await api("/web/api/grants", { method: "POST", json: { tier: form.tier.value, amount: form.amount.value,
          milestones: form.milestones.value.split(","), metadata_uri: form.metadata_uri.value } });
        showOk(slot, `Grant #${g.id} applied for: ${open(g.amount)} OPEN in ${g.milestones.length} milestones.`);
      } catch (err) { showError(slot, err, err.field || null); }
    });
  });
  return h("details", { class: "card", id: "apply" }, h("summary", {}, "Apply for a grant"), form);
}

