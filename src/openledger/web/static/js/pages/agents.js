// Agents: a published model with a configuration (system prompt, retrieval over datanets,
// models and agents it may call) and a wallet of its own that pays for its calls. The list,
// a form to create one (the same checks as the CLI and the JSON API), and an agent's page:
// its configuration, wallet (credit, fund), the calls made to it and by it, its earnings,
// and "Try it" in the playground.
import { api } from "../api.js";
import { badge, busy, clear, field, h, link, open, short, showError, showOk, when } from "../ui.js";
import { signedInOr } from "../app.js";
import { me } from "../state.js";

const mine = (a) => me() && a.owner.toLowerCase() === me().address.toLowerCase();
const state = (a) => badge(a.active ? "active" : "paused", "agent-state");

export async function render(view, route) {
  if (route.args[0]) return renderAgent(view, route.args[0]);
  view.append(h("h1", {}, "Agents"));
  view.append(h("p", { class: "muted" }, "An agent is a published model with a system prompt, retrieval over datanets and the models and agents it may call. ",
    "A call pays the model's fee plus the agent's price, which goes to its owner; its wallet pays for the calls it makes."));
  const list = await api(me() ? "/web/api/agents" : "/agents?limit=500");
  const rows = list.items.map((a) => h("tr", { "data-name": a.name },
    h("td", {}, link(`#/agents/${encodeURIComponent(a.name)}`, `agent/${a.name}`)),
    h("td", { class: "mono", title: a.owner }, mine(a) ? "you" : short(a.owner)),
    h("td", {}, a.model || `#${a.model_id}`),
    h("td", {}, open(a.price)),
    h("td", {}, state(a)),
    h("td", { class: "credit" }, a.credit && !a.credit.error ? open(a.credit.available) : "–")));
  view.append(h("section", { class: "card" }, h("h2", {}, `Agents (${list.total})`),
    rows.length ? h("div", { class: "table-wrap" }, h("table", { id: "agents" }, h("thead", {}, h("tr", {},
      h("th", {}, "agent"), h("th", {}, "owner"), h("th", {}, "model"), h("th", {}, "OPEN per call"),
      h("th", {}, "state"), h("th", { title: "Your agents' wallets only" }, "wallet credit, OPEN"))),
    h("tbody", {}, rows)))
      : h("p", { class: "muted" }, "No agents yet.")));
  const card = h("section", { class: "card", id: "create" }, h("h2", {}, "Create an agent"));
  if (signedInOr(card, "create an agent")) card.append(await createForm(list.items));
  view.append(card);
}

async function createForm(agents) {
  const [models, datanets] = await Promise.all([api("/models?limit=500"), api("/datanets?limit=500")]);
  if (!models.items.length) return h("p", { class: "notice" }, "No model is published yet: publish one in the Model Factory first.");
  const frozen = [];
  for (const d of datanets.items) {
    const s = await api(`/datanets/${encodeURIComponent(d.name)}/snapshots`);
    if (s.items.length) frozen.push([d.name, `${d.name} (@${s.items[s.items.length - 1].version})`]);
  }
  const callees = [...models.items.map((m) => [m.name, m.name]),
    ...agents.filter((a) => a.config).map((a) => [`agent/${a.name}`, `agent/${a.name}`])];
  const multi = (label, name, options, help) => field({ label, name, options, help, value: null,
    attrs: { multiple: true, size: Math.min(4, Math.max(2, options.length)) } });
  const slot = h("div", { id: "agent-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "agent-submit" }, "Create on chain");
  const form = h("form", { id: "agent-form" },
    h("div", { class: "row inline" },
      field({ label: "Name", name: "name", help: "2-63 lower-case letters, digits, '.', '-' or '_'; called as agent/NAME.", attrs: { required: true } }),
      field({ label: "Model", name: "model", value: models.items[0].name, options: models.items.map((m) => [m.name, m.name]),
        help: "The published model it runs." })),
    field({ label: "System prompt", name: "system_prompt", type: "textarea", help: "Put before every conversation (at most 8,000 characters)." }),
    h("div", { class: "row inline" },
      field({ label: "Price (OPEN per call)", name: "price", type: "number", value: "0.01", help: "Paid to you on top of the model's fee.", attrs: { min: 0, step: "any" } }),
      field({ label: "Spending cap (OPEN per epoch)", name: "spend_cap", type: "number", value: "0", help: "The most its wallet may spend on calls; 0: none.", attrs: { min: 0, step: "any" } }),
      field({ label: "Temperature", name: "temperature", type: "number", value: 0, help: "0: always the likeliest token.", attrs: { min: 0, max: 2, step: "any" } }),
      field({ label: "Max tokens", name: "max_tokens", type: "number", value: 64, help: "Per answer, unless the caller asks otherwise.", attrs: { min: 1, max: 4096, step: 1 } })),
    h("div", { class: "row inline" },
      frozen.length ? multi("Retrieve from datanets", "retrieval", frozen, "Passages of their latest snapshot go into the prompt; the receipt names the records. A priced datanet only if you own it or contributed to it.")
        : h("p", { class: "small muted" }, "No datanet has a snapshot to retrieve from."),
      field({ label: "Passages per call", name: "retrieval_k", type: "number", value: 3, help: "The most similar chunks retrieved (1-16).", attrs: { min: 1, max: 16, step: 1 } }),
      multi("May call", "calls", callees, "Models and agents it consults before it answers, paid by its wallet.")),
    h("div", { class: "actions" }, submit), slot);
  const picked = (name) => (form[name] ? [...form[name].selectedOptions].map((o) => o.value) : []);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      clear(slot);
      try {
        const a = await api("/web/api/agents", { method: "POST", json: { name: form.name.value.trim(),
          model: form.model.value, system_prompt: form.system_prompt.value, price: form.price.value || "0",
          spend_cap: form.spend_cap.value || "0", temperature: Number(form.temperature.value),
          max_tokens: Number(form.max_tokens.value), retrieval: picked("retrieval"),
          retrieval_k: Number(form.retrieval_k.value), calls: picked("calls") } });
        showOk(slot, `agent/${a.name} registered on chain (#${a.id}).`);
        slot.append(link(`#/agents/${encodeURIComponent(a.name)}`, `Open agent/${a.name}`, { id: "agent-created" }));
      } catch (err) {
        showError(slot, err, err.field || null);
        const bad = err.field && form.querySelector(`[name="${err.field.replace(/^--/, "").replace(/-/g, "_")}"]`);
        if (bad) { bad.setAttribute("aria-invalid", "true"); bad.focus(); }
      }
    });
  });
  return form;
}

async function renderAgent(view, name) {
  const a = await api(`/agents/${encodeURIComponent(name)}`);
  view.append(h("p", { class: "small" }, link("#/agents", "← Agents")));
  view.append(h("h1", { id: "agent-title", "data-name": a.name }, `agent/${a.name} `, state(a)));
  const kpi = (label, value, id) => h("div", { class: "kpi" }, h("b", { id }, value), h("span", {}, label));
  view.append(h("div", { class: "kpis" },
    kpi("owner", mine(a) ? "you" : short(a.owner)), kpi("model", a.model || `#${a.model_id}`),
    kpi("OPEN per call", open(a.price), "agent-price"), kpi("call depth", a.depth)));
  const try_ = link(`#/playground?model=${encodeURIComponent(`agent/${a.name}`)}`, "Try it in the playground", { id: "agent-try", class: "button" });
  view.append(h("div", { class: "actions" }, a.active && a.config ? try_ : h("span", { class: "muted" }, a.active ? "Its configuration is not known on this node." : "Paused by its owner.")));
  const c = a.config;
  const line = (label, value) => h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, value));
  view.append(h("section", { class: "card", id: "agent-config" }, h("h2", {}, "Configuration"), c ? h("table", { class: "small" }, h("tbody", {},
    line("system prompt", c.system_prompt || "–"),
    line("retrieval", c.retrieval.length ? `${c.retrieval.join(", ")} (top ${c.retrieval_k} passages of the latest snapshot)` : "none"),
    line("calls", c.calls.length ? c.calls.join(", ") : "nothing"),
    line("sampling", `temperature ${c.temperature}, top_p ${c.top_p}, max_tokens ${c.max_tokens}`),
    line("spending cap", c.spend_cap !== "0" ? `${open(c.spend_cap)} OPEN per epoch` : "none"),
    line("configuration hash", h("span", { class: "mono" }, a.config_hash)),
    line("wallet", a.wallet ? h("span", { class: "mono" }, a.wallet) : "none on this node")))
    : h("p", { class: "muted" }, `Registered elsewhere: its configuration (${a.config_hash}) is not known on this node.`)));
  if (!signedInOr(view, "fund this agent's wallet or see its calls")) return;
  const cols = h("div", { class: "cols" });
  view.append(cols);
  const act = mine(a) ? await api(`/web/api/agents/${encodeURIComponent(a.name)}/activity`) : null;
  cols.append(walletCard(a, act), act ? earningsCard(act) : h("section", { class: "card" }, h("h2", {}, "Calls and earnings"),
    h("p", { class: "small muted" }, "Only its owner sees its calls, wallet credit and earnings.")));
  if (act) view.append(callsCard("Calls to it", "calls-to", act.calls_to, true), callsCard("Calls it made", "calls-made", act.calls_made, false));
}

function walletCard(a, act) {
  const card = h("section", { class: "card", id: "agent-wallet" }, h("h2", {}, "Wallet"));
  if (!a.wallet) { card.append(h("p", { class: "muted" }, "It was created on another node: fund it there.")); return card; }
  const credit = h("div", { class: "kpis" });
  const draw = (w) => {
    clear(credit);
    if (!w || w.error) { credit.append(h("p", { class: "small muted" }, w && w.error ? w.error : "Its owner sees its credit.")); return; }
    credit.append(h("div", { class: "kpi" }, h("b", { id: "wallet-available" }, open(w.available)), h("span", {}, "credit available, OPEN")),
      h("div", { class: "kpi" }, h("b", {}, open(w.charged)), h("span", {}, "spent on calls, OPEN")));
  };
  draw(act && act.wallet);
  const slot = h("div", { id: "fund-status", "aria-live": "polite" });
  const b = h("button", { type: "submit", id: "fund-submit", class: "secondary" }, "Fund");
  const form = h("form", { id: "fund-form" },
    field({ label: "Fund its wallet (OPEN)", name: "amount", type: "number", value: 1,
      help: "Moves OPEN from your balance into the inference escrow as the agent's credit: what pays for the calls it makes.", attrs: { min: 0, step: "any" } }),
    h("div", { class: "actions" }, b), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(b, async () => {
      clear(slot);
      try {
        const r = await api(`/web/api/agents/${encodeURIComponent(a.name)}/fund`, { method: "POST", json: { amount: form.amount.value } });
        showOk(slot, `Funded ${open(r.funded)} OPEN (transaction ${short(r.tx_hash)}).`);
        if (mine(a)) draw(r);
      } catch (err) { showError(slot, err, err.field || null); }
    });
  });
  card.append(h("p", { class: "small mono", title: a.wallet }, a.wallet), credit, form);
  return card;
}

function earningsCard(act) {
  const kpi = (label, value, id) => h("div", { class: "kpi" }, h("b", { id }, value), h("span", {}, label));
  return h("section", { class: "card", id: "agent-earnings" }, h("h2", {}, "Earnings"),
    h("div", { class: "kpis" }, kpi("calls answered", act.calls, "agent-calls"), kpi("earned, OPEN", open(act.earned), "agent-earned"),
      kpi("settled in epochs", open(act.settled)), kpi("in the open epoch", open(act.pending))),
    h("p", { class: "small muted" }, "Its price per call, paid to its owner when the epoch settles (claim it on the Rewards page)."));
}

function callsCard(title, id, calls, to) {
  const rows = calls.map((c) => h("tr", {},
    h("td", {}, link(`#/receipts/${c.id}`, c.id.slice(0, 12) + "…")),
    h("td", { class: "small hide-sm" }, when(c.created_at)),
    h("td", { class: "mono", title: c.payer }, short(c.payer)),
    h("td", {}, c.model),
    h("td", {}, open(c.fee, 6)),
    h("td", { class: "small" }, to ? [c.retrieved.length ? `${c.retrieved.length} record(s) retrieved` : null, c.inner ? `${c.inner} call(s) made` : null].filter(Boolean).join(", ") || "–"
      : c.agent ? `agent/${c.agent}` : "model"),
    h("td", {}, badge(c.epoch ? "settled" : "pending"))));
  return h("section", { class: "card" }, h("h2", {}, title), rows.length ? h("div", { class: "table-wrap" }, h("table", { id, class: "small" },
    h("thead", {}, h("tr", {}, h("th", {}, "receipt"), h("th", { class: "hide-sm" }, "when"), h("th", {}, "payer"), h("th", {}, "model"),
      h("th", {}, "fee, OPEN"), h("th", {}, to ? "behind it" : "called"), h("th", {}, "epoch"))),
    h("tbody", {}, rows))) : h("p", { class: "muted" }, "None yet."));
}
