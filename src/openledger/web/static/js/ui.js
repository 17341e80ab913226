// Small DOM helpers, number and time formats shared by the pages.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") el.className = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "html") el.innerHTML = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

// An error shown in place: the message, what to do, and (if the node named it) the field.
export function errorBox(err, where) {
  const box = h("div", { class: "error", role: "alert" });
  if (where) box.append(h("span", { class: "where" }, where + ": "));
  box.append(err.message || String(err));
  if (err.fix) box.append(h("div", { class: "small" }, "Fix: " + err.fix));
  return box;
}

export function showError(slot, err, where) { clear(slot).append(errorBox(err, where)); }
export function showOk(slot, text) { clear(slot).append(h("div", { class: "ok", role: "status" }, text)); }

const WEI = 10n ** 18n;
export function open(wei, digits = 4) {
  if (wei === null || wei === undefined || wei === "") return "–";
  let v;
  try { v = BigInt(wei); } catch { return String(wei); }
  const neg = v < 0n; if (neg) v = -v;
  const whole = v / WEI;
  let frac = (v % WEI).toString().padStart(18, "0").slice(0, digits).replace(/0+$/, "");
  if (!frac && v % WEI !== 0n && whole === 0n) return (neg ? "-" : "") + "<0." + "0".repeat(digits - 1) + "1";
  return (neg ? "-" : "") + whole.toLocaleString("en") + (frac ? "." + frac : "");
}
export function openNum(wei) { return Number(BigInt(wei || 0)) / 1e18; }

export function short(addr) { return addr ? addr.slice(0, 6) + "…" + addr.slice(-4) : "–"; }
export function when(iso) { return iso ? new Date(iso).toLocaleString("en-GB") : "–"; }
export function pct(x) { return (100 * x).toFixed(1) + "%"; }

export function duration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${hh}h`;
  if (hh) return `${hh}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function badge(text, extra = "") { return h("span", { class: `badge ${text} ${extra}` }, text); }

// A labelled form field; `help` explains it.
export function field({ label, name, type = "text", value = "", help, options, attrs = {} }) {
  const id = "f-" + name;
  let input;
  if (options) {
    input = h("select", { id, name, ...attrs }, options.map((o) => {
      const [v, t] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: v, selected: String(v) === String(value) }, t);
    }));
  } else if (type === "textarea") {
    input = h("textarea", { id, name, ...attrs }, value);
  } else {
    input = h("input", { id, name, type, value, ...attrs });
  }
  const helpId = help ? id + "-help" : null;
  if (helpId) input.setAttribute("aria-describedby", helpId);
  return h("div", { class: "row" }, h("label", { for: id }, label), input,
    help ? h("div", { class: "help", id: helpId }, help) : null);
}

// The busy state of an action: its button disabled (aria-busy) and, next to it, a line that
// says which step a write from the browser wallet is at ("Confirm 1 of 2 transactions in your
// wallet…", "Waiting for 0xabc… to be mined…", "Recording…"; api() reports them). The line is
// a polite live region, there before its first step, so each step is announced; it goes when
// the action ends, whose result or error the page shows in the action's own slot. An error
// the action leaves unhandled is shown next to the button too (until the next try).
const stepping = [];  // the progress reporters of the actions under way, latest last
export function currentProgress() { return stepping[stepping.length - 1] || null; }

export async function busy(button, fn) {
  const left = button.nextElementSibling;
  if (left && left.classList.contains("busy-error")) left.remove();
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  const line = h("span", { class: "busy-step small", role: "status", "aria-live": "polite" });
  button.after(line);
  const progress = (text) => { line.textContent = text || ""; };
  stepping.push(progress);
  try {
    return await fn(progress);
  } catch (err) {
    button.after(h("div", { class: "busy-error" }, errorBox(err)));
    throw err;
  } finally {
    stepping.splice(stepping.indexOf(progress), 1);
    line.remove();
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

export function link(href, text, attrs = {}) { return h("a", { href, ...attrs }, text); }
