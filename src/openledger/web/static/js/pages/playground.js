// Playground: chat with a published model or an agent (agent/NAME); each answer shows its
// attribution the way OLMoTrace does (spans matched in the training data, linked to their
// contributions and records), the shares per contributor, the fee split and the signed
// receipt; an agent's answer also shows the passages it retrieved and the calls it made.
import { api } from "../api.js";
import { busy, clear, field, h, link, open, pct, short, showError, showOk } from "../ui.js";
import { barChart } from "../charts.js";
import { signedInOr } from "../app.js";

export async function render(view, route) {
  view.append(h("h1", {}, "Playground"));
  if (!signedInOr(view, "chat with a model (answers are paid from your inference credit)")) return;
  const [models, agents, me] = await Promise.all([api("/models?limit=500"), api("/agents?limit=500"), api("/web/api/me")]);
  if (!models.items.length) { view.append(h("p", { class: "muted" }, "No model is published yet.")); return; }
  const served = new Set(models.items.map((m) => m.name));
  const callable = agents.items.filter((a) => a.active && a.config && served.has(a.model));
  const credit = h("div", { class: "small", id: "credit" });
  const drawCredit = (c) => clear(credit).append(c && !c.error ? `Inference credit: ${open(c.available)} OPEN available` : "Inference credit: –");
  drawCredit(me.credit);
  const chosen = route.query.get("model") || models.items[0].name;
  const log = h("div", { class: "chat-log", id: "chat-log" });
  const slot = h("div", { id: "chat-status", "aria-live": "polite" });
  const details = h("div", { id: "attribution" });
  const send = h("button", { type: "submit", id: "chat-send" }, "Send");
  const form = h("form", { id: "chat-form" },
    h("div", { class: "row inline" },
      field({ label: "Model", name: "model", value: chosen, options: [
        ...models.items.map((m) => [m.name, `${m.name} (${open(m.price_in)}/${open(m.price_out)} OPEN per 1k)`]),
        ...callable.map((a) => [`agent/${a.name}`, `agent/${a.name} (${a.model}, +${open(a.price)} OPEN per call)`])] }),
      field({ label: "Max tokens", name: "max_tokens", type: "number", value: 32, attrs: { min: 1, max: 256 } }),
      field({ label: "Temperature", name: "temperature", type: "number", value: 0.7, help: "0: always the likeliest token.", attrs: { min: 0, max: 2, step: "any" } }),
      field({ label: "Seed", name: "seed", type: "number", value: 0, help: "Same seed, same answer.", attrs: { step: 1 } })),
    field({ label: "Message", name: "message", type: "textarea", help: "Enter to send, Shift+Enter for a new line.", attrs: { required: true } }),
    h("div", { class: "actions" }, send, credit), slot);
  const messages = [];
  form.message.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); form.requestSubmit(); }
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = form.message.value.trim();
    if (!text) { showError(slot, { message: "Write a message first." }); return; }
    busy(send, async () => {
      clear(slot);
      const turn = [...messages, { role: "user", content: text }];
      try {
        const r = await api("/web/api/chat", { method: "POST", json: { model: form.model.value, messages: turn,
          max_tokens: Number(form.max_tokens.value), temperature: Number(form.temperature.value),
          seed: form.seed.value === "" ? null : Number(form.seed.value) } });
        messages.push({ role: "user", content: text }, { role: "assistant", content: r.text });
        log.append(h("div", { class: "msg user" }, h("span", {}, text)),
          h("div", { class: "msg assistant" }, answer(r)));
        form.message.value = "";
        clear(details).append(attributionView(r));
        try { drawCredit((await api("/web/api/me")).credit); } catch { /* keep the old figure */ }
      } catch (err) { showError(slot, err); }
    });
  });
  const cols = h("div", { class: "cols" });
  cols.append(h("section", {}, h("div", { class: "card" }, log, form), depositForm((r) => drawCredit(r))), h("section", {}, details));
  view.append(cols);
}

function answer(r) {
  const el = h("div", { class: "answer", "data-receipt": r.receipt.id });
  let at = 0;
  for (const s of r.spans) {
    if (s.start < at) continue;
    el.append(r.text.slice(at, s.start));
    const src = s.sources[0];
    const title = s.sources.map((x) => `contribution #${x.contribution} by ${short(x.contributor)}, snapshot record ${x.record}`).join("; ");
    el.append(h("mark", { class: "span", title, "data-contributions": s.sources.map((x) => x.contribution).join(",") },
      h("a", { href: `#/contributions/${src.contribution}?hl=${encodeURIComponent(s.text)}&record=${src.record}` }, r.text.slice(s.start, s.end))));
    at = s.end;
  }
  el.append(r.text.slice(at));
  return el;
}

function attributionView(r) {
  const wrap = h("div");
  if (r.agent) wrap.append(agentView(r.agent));
  const byRole = {};
  for (const p of r.receipt.payouts) byRole[p.role] = (byRole[p.role] || 0n) + BigInt(p.amount);
  // stakers' and unattributed parts are pooled per beneficiary set and divided at the epoch's seal
  for (const [role, amount] of Object.entries(r.receipt.pools || {})) {
    const key = `${role} (pooled until the epoch)`;
    byRole[key] = (byRole[key] || 0n) + BigInt(amount);
  }
  wrap.append(h("section", { class: "card" }, h("h2", {}, "Where this answer came from"),
    h("p", { class: "small muted" }, `Method: ${r.attribution.method}. `,
      r.spans.length ? `${r.spans.length} span(s) of the answer appear verbatim in the training data (highlighted; each links to its contribution).`
        : "No span of the answer matched the training data verbatim."),
    barChart(r.contributors.map((c) => ({ label: c.contributor ? short(c.contributor) : "unattributed", value: c.weight })),
      { total: 1, format: pct, title: "share per contributor" }),
    r.attribution.shares.length ? h("table", { class: "small", id: "shares" }, h("thead", {}, h("tr", {}, h("th", {}, "contribution"), h("th", {}, "contributor"), h("th", {}, "weight"))),
      h("tbody", {}, r.attribution.shares.map((s) => h("tr", {}, h("td", {}, link(`#/contributions/${s.contribution}`, `#${s.contribution}`)),
        h("td", { class: "mono" }, short(s.contributor)), h("td", {}, pct(s.weight)))))) : null));
  wrap.append(h("section", { class: "card", id: "fee" }, h("h2", {}, "Fee"),
    h("p", {}, h("b", {}, `${open(r.receipt.fee, 6)} OPEN`), ` for ${r.usage.prompt_tokens} prompt + ${r.usage.completion_tokens} completion tokens`),
    h("table", { class: "small" }, h("tbody", {}, Object.entries(byRole).map(([role, v]) =>
      h("tr", { "data-role": role, "data-wei": v.toString() }, h("td", {}, role), h("td", {}, `${open(v.toString(), 8)} OPEN`))))),
    h("p", { class: "small" }, link(`#/receipts/${r.receipt.id}`, `Signed receipt #${r.receipt.id}`, { id: "receipt-link" }),
      h("span", { class: "mono muted" }, ` ${short(r.receipt.hash)}`))));
  return wrap;
}

// What an agent put into its prompt (the passages it retrieved, each from a record of a
// contribution) and the calls it made, whose receipts its own receipt names.
function agentView(a) {
  return h("section", { class: "card", id: "agent-answer" }, h("h2", {}, `agent/${a.name}`),
    h("p", { class: "small muted" }, `Runs ${a.model}; its price of ${open(a.price)} OPEN per call goes to its owner.`,
      a.inner.length ? ` It consulted ${a.inner.length} model(s) or agent(s) first, paid by its wallet.` : ""),
    a.retrieved.length ? h("div", { class: "table-wrap" }, h("table", { class: "small", id: "retrieved" },
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "passage retrieved into the prompt"), h("th", {}, "from"))),
      h("tbody", {}, a.retrieved.map((p, i) => h("tr", { "data-contribution": p.contribution },
        h("td", {}, `[${i + 1}]`), h("td", {}, p.text),
        h("td", {}, `${p.datanet}@${p.version}, record ${p.record}, `, link(`#/contributions/${p.contribution}?record=${p.record}`, `#${p.contribution}`),
          ` by ${short(p.contributor)}`))))))
      : h("p", { class: "small muted" }, "It retrieves nothing."));
}

function depositForm(onDone) {
  const slot = h("div", { "aria-live": "polite" });
  const b = h("button", { type: "submit", class: "secondary" }, "Add credit");
  const form = h("form", { id: "deposit-form" }, field({ label: "Deposit OPEN as inference credit", name: "amount", type: "number", value: 10,
    help: "Moves OPEN from your balance into the inference escrow (withdrawable after a delay).", attrs: { min: 0, step: "any" } }),
    h("div", { class: "actions" }, b), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(b, async () => {
      try {
        const r = await api("/web/api/deposit", { method: "POST", json: { amount: form.amount.value } });
        showOk(slot, `Deposited ${open(r.amount)} OPEN (transaction ${short(r.tx_hash)}).`);
        onDone(r);
      } catch (err) { showError(slot, err); }
    });
  });
  return h("details", { class: "card" }, h("summary", {}, "Add inference credit"), form);
}
