import { api } from "../api.js";
import { h } from "../ui.js";
import { me } from "../state.js";

const TILES = [
  ["#/datanets", "Datanets", "Browse community datasets, contribute files with a stake, see snapshots."],
  ["#/review", "Review", "Validators: approve or reject pending contributions, with the stake at risk."],
  ["#/factory", "Model Factory", "Fine-tune a LoRA adapter on a snapshot without code; watch the loss."],
  ["#/agents", "Agents", "Models with a system prompt, retrieval over datanets and callees; create, fund, earn."],
  ["#/playground", "Playground", "Chat with a published model or an agent and see which data its answer came from."],
  ["#/rewards", "Rewards", "What your data earned, by datanet, model and contribution; claim it."],
  ["#/governance", "Governance", "Proposals, votes and OpenCircle grants."],
];

export async function render(view) {
  view.append(h("h1", {}, "OpenLedger node"));
  const s = me();
  view.append(h("p", { class: "muted" }, s ? "Signed in. Pick what to do:" :
    "Data that keeps paying its contributors. Sign in to contribute, review, train, chat or claim."));
  const kpis = h("div", { class: "kpis", id: "kpis" });
  view.append(kpis);
  view.append(h("div", { class: "hero" }, TILES.map(([href, title, text]) =>
    h("a", { href, class: "card" }, h("h3", {}, title), h("p", { class: "small muted" }, text)))));
  const [health, datanets, models, epochs] = await Promise.allSettled([
    api("/health"), api("/datanets?limit=500"), api("/models?limit=500"), api("/epochs")]);
  const kpi = (label, value) => h("div", { class: "kpi" }, h("b", {}, value), h("span", {}, label));
  const val = (r, f) => (r.status === "fulfilled" ? f(r.value) : "–");
  kpis.append(
    kpi("chain", val(health, (x) => (x.chain.ok ? `id ${x.chain.chain_id}, block ${x.chain.block}` : "down"))),
    kpi("datanets", val(datanets, (x) => x.total ?? x.items.length)),
    kpi("published models", val(models, (x) => x.total)),
    kpi("epochs settled", val(epochs, (x) => x.items.filter((e) => e.status === "settled").length)),
  );
}
