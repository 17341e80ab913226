// Your account: OPEN balance, inference credit (deposit, withdraw after the delay) and the
// API keys programs use for /v1 (dev accounts: keys bind to accounts the node holds).
import { api } from "../api.js";
import { busy, clear, field, h, open, short, showError, showOk, when } from "../ui.js";
import { signedInOr } from "../app.js";

export async function render(view) {
  view.append(h("h1", {}, "Account"));
  if (!signedInOr(view, "see your account")) return;
  const me = await api("/web/api/me");
  const c = me.credit && !me.credit.error ? me.credit : null;
  const kpi = (id, label, value) => h("div", { class: "kpi" }, h("b", { id }, value), h("span", {}, label));
  view.append(h("p", { class: "mono small" }, me.address));
  const kpis = h("div", { class: "kpis", id: "account-kpis" });
  const drawKpis = (credit, balance) => clear(kpis).append(
    kpi("acct-balance", "OPEN balance on chain", balance && !balance.error ? open(balance) : "–"),
    kpi("acct-available", "credit available", credit ? open(credit.available) : "–"),
    kpi("acct-deposited", "deposited", credit ? open(credit.deposited) : "–"),
    kpi("acct-charged", "charged for inference", credit ? open(credit.charged) : "–"),
    kpi("acct-pending", "withdrawal pending", credit ? open(credit.pending_withdrawal || "0") : "–"));
  drawKpis(c, me.balance);
  view.append(kpis);
  const refresh = async () => { const m = await api("/web/api/me"); drawKpis(m.credit.error ? null : m.credit, m.balance); };
  const cols = h("div", { class: "cols" });
  cols.append(creditCard(refresh), await keysCard());
  view.append(cols);
}

function amountForm(id, label, help, button, path, done) {
  const slot = h("div", { id: `${id}-status`, "aria-live": "polite" });
  const b = h("button", { type: "submit", id: `${id}-submit` }, button);
  const form = h("form", { id }, field({ label, name: `${id}-amount`, type: "number", value: 10, help,
    attrs: { min: 0, step: "any", required: true } }), h("div", { class: "actions" }, b), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(b, async () => {
      try {
        const r = await api(path, { method: "POST", json: { amount: form[`${id}-amount`].value } });
        showOk(slot, done(r));
      } catch (err) { showError(slot, err); }
    });
  });
  return { form, slot };
}

function creditCard(refresh) {
  const dep = amountForm("deposit", "Deposit (OPEN)", "From your balance into the inference escrow; credit is available at once.",
    "Deposit", "/web/api/deposit", (r) => { refresh(); return `Deposited ${open(r.amount)} OPEN (transaction ${short(r.tx_hash)}).`; });
  const wd = amountForm("withdraw", "Withdraw (OPEN)", "Unused credit back to your balance, after the escrow's withdrawal delay.",
    "Request withdrawal", "/web/api/withdrawals", (r) => { refresh(); return `Requested ${open(r.amount)} OPEN; ready ${when(new Date(r.ready_at * 1000).toISOString())}.`; });
  const slot = h("div", { id: "complete-status", "aria-live": "polite" });
  const complete = h("button", { class: "secondary", id: "complete-withdrawal" }, "Complete my withdrawal");
  complete.addEventListener("click", () => busy(complete, async () => {
    try { const r = await api("/web/api/withdrawals/complete", { method: "POST" }); refresh();
      showOk(slot, `Withdrew ${open(r.paid)} OPEN.`); }
    catch (err) { showError(slot, err); }
  }));
  return h("section", { class: "card" }, h("h2", {}, "Inference credit"), dep.form, wd.form,
    h("div", { class: "actions" }, complete), slot);
}

async function keysCard() {
  const card = h("section", { class: "card", id: "keys" }, h("h2", {}, "API keys"),
    h("p", { class: "small muted" }, "Programs call the OpenAI-compatible /v1 with a key: Authorization: Bearer olk_…; requests are paid from this account's credit."));
  const list = h("div");
  const slot = h("div", { id: "keys-status", "aria-live": "polite" });
  const draw = async () => {
    const keys = await api("/web/api/keys");
    clear(list);
    if (!keys.bound) { list.append(h("p", { class: "notice small" }, "API keys bind to accounts this node holds; this one is a wallet account.")); return false; }
    list.append(keys.items.length ? h("div", { class: "table-wrap" }, h("table", { class: "small", id: "key-list" }, h("thead", {}, h("tr", {}, h("th", {}, "key"), h("th", {}, "label"), h("th", {}, "scopes"), h("th", {}, "last used"), h("th", {}, ""))),
      h("tbody", {}, keys.items.map((k) => {
        const revoke = h("button", { class: "secondary small", "aria-label": `Revoke ${k.key_id}` }, "Revoke");
        revoke.addEventListener("click", () => busy(revoke, async () => {
          try { await api(`/web/api/keys/${encodeURIComponent(k.key_id)}/revoke`, { method: "POST" }); await draw(); }
          catch (err) { showError(slot, err); }
        }));
        return h("tr", { "data-key": k.key_id }, h("td", { class: "mono nowrap" }, k.key_id + "…"), h("td", {}, k.label || "–"),
          h("td", { class: "key-scopes" }, (k.scopes || []).join(", ")),
          h("td", {}, k.last_used ? when(k.last_used) : "never"), h("td", {}, k.revoked ? `revoked ${when(k.revoked)}` : revoke));
      })))) : h("p", { class: "muted small" }, "No keys yet."));
    return true;
  };
  const bound = await draw();
  card.append(list);
  if (bound) {
    const b = h("button", { type: "submit", id: "key-create" }, "Create a key");
    const form = h("form", { id: "key-form" }, field({ label: "Label", name: "key-label", help: "What uses it, e.g. my-app." }),
      scopesField(), h("div", { class: "actions" }, b));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      busy(b, async () => {
        try {
          const scopes = SCOPES.map(([s]) => s).filter((s) => form[`key-scope-${s}`].checked);
          const k = await api("/web/api/keys", { method: "POST", json: { label: form["key-label"].value, scopes } });
          clear(slot).append(h("div", { class: "ok" }, "Copy it now; it is shown only once: ",
            h("div", { class: "mono", id: "new-key" }, k.key)));
          await draw();
        } catch (err) { showError(slot, err); }
      });
    });
    card.append(form);
  }
  card.append(slot);
  return card;
}

// What a key may do: inference and reading its own receipts by default; "write" lets a
// program contribute, review, vote and claim for this account (it still signs its own
// transactions unless the node holds the account's key).
const SCOPES = [
  ["inference", "inference: call /v1, paid from this account's credit", true],
  ["read", "read: this account's receipts and credit", true],
  ["write", "write: contribute, review, vote, claim, … for this account", false],
];

function scopesField() {
  return h("fieldset", { class: "row scopes", id: "key-scopes", "aria-describedby": "key-scopes-help" },
    h("legend", {}, "Scopes"),
    ...SCOPES.map(([s, text, on]) => h("label", { class: "check" },
      h("input", { type: "checkbox", id: `f-key-scope-${s}`, name: `key-scope-${s}`, checked: on }), " ", text)),
    h("div", { class: "help", id: "key-scopes-help" }, "Give a key only what its program needs; at least one."));
}
