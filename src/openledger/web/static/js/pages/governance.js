// Governance and grants: drawn from /governance and /grants when the node has them.
import { api } from "../api.js";
import { h } from "../ui.js";

export async function render(view) {
  view.append(h("h1", {}, "Governance and grants"));
  try {
    await api("/governance/proposals");
  } catch (err) {
    view.append(h("p", { class: "notice" }, err.status === 404
      ? "This node does not serve governance yet." : err.message));
  }
}
