// The router: #/page/arg?query -> a page module's render(view, route); the account chip.
import { api } from "./api.js";
import { clear, errorBox, h, short } from "./ui.js";
import { me, refreshSession, state } from "./state.js";

const PAGES = {
  "": () => import("./pages/home.js"),
  signin: () => import("./pages/signin.js"),
  datanets: () => import("./pages/datanets.js"),
  contributions: () => import("./pages/contribution.js"),
  review: () => import("./pages/review.js"),
  factory: () => import("./pages/factory.js"),
  agents: () => import("./pages/agents.js"),
  playground: () => import("./pages/playground.js"),
  rewards: () => import("./pages/rewards.js"),
  governance: () => import("./pages/governance.js"),
  account: () => import("./pages/account.js"),
  receipts: () => import("./pages/receipt.js"),
};

let cleanups = [];
export function onLeave(fn) { cleanups.push(fn); }

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, query] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { page: parts[0] || "", args: parts.slice(1), query: new URLSearchParams(query || "") };
}

function renderAccount() {
  const slot = clear(document.getElementById("account"));
  const s = me();
  if (!s) {
    slot.append(h("a", { href: "#/signin", class: "badge", id: "signin-link" }, "Sign in"));
    return;
  }
  slot.append(h("a", { class: "mono", href: "#/account", title: s.address, id: "whoami" }, s.dev ? s.dev : short(s.address)));
  if (s.dev) slot.append(h("span", { class: "badge dev", title: "A devnet account whose key the node holds. Never use it with value." }, "dev account"));
  slot.append(h("button", { class: "secondary small", id: "signout", onclick: async () => {
    await api("/web/auth/logout", { method: "POST" });
    await refreshSession(); renderAccount(); route();
  } }, "Sign out"));
}

export async function route() {
  for (const fn of cleanups) { try { fn(); } catch { /* ignore */ } }
  cleanups = [];
  const r = parseRoute();
  document.querySelectorAll("[data-nav]").forEach((a) =>
    a.classList.toggle("active", a.dataset.nav === r.page || (r.page === "contributions" && a.dataset.nav === "datanets")));
  const view = clear(document.getElementById("view"));
  const load = PAGES[r.page];
  if (!load) { view.append(h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/" }, "Go home"))); return; }
  try {
    const mod = await load();
    await mod.render(view, r);
  } catch (err) {
    view.append(errorBox(err));
  }
  view.dataset.rendered = location.hash || "#/";
}

export function signedInOr(view, what) {
  if (me()) return true;
  view.append(h("div", { class: "notice" }, `Sign in to ${what}. `, h("a", { href: "#/signin" }, "Sign in")));
  return false;
}

export async function sessionChanged() { await refreshSession(); renderAccount(); }

async function start() {
  try { await refreshSession(); } catch (err) { state.info = { session: null, error: err.message }; }
  renderAccount();
  window.addEventListener("hashchange", route);
  await route();
  document.body.dataset.ready = "1";
}
start();
