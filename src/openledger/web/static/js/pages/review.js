// Validators' queue: pending contributions of the datanets you validate, with previews,
// the reviews so far and the stake at risk; approve or reject with a reason.
import { api } from "../api.js";
import { badge, busy, clear, h, link, open, short, showError, showOk } from "../ui.js";
import { signedInOr } from "../app.js";

export async function render(view) {
  view.append(h("h1", {}, "Review queue"));
  if (!signedInOr(view, "review contributions")) return;
  const q = await api("/web/api/review-queue");
  view.append(h("p", { class: "muted small" }, `A rejection slashes ${(q.slash_bps / 100).toFixed(0)}% of the contributor's stake. Each validator reviews once; the datanet's quorum decides.`));
  const list = h("div", { id: "queue" });
  view.append(list);
  if (!q.validates.length) { list.append(h("p", { class: "muted", id: "queue-empty" }, "You validate no datanet: its owner names the validators when creating it.")); return; }
  view.insertBefore(h("p", { class: "small" }, `You validate: ${q.validates.join(", ")}.`), list);
  if (!q.items.length) { list.append(h("p", { class: "muted", id: "queue-empty" }, "Nothing waits for your review.")); return; }
  for (const item of q.items) list.append(card(item));
}

function card(item) {
  const slot = h("div", { "aria-live": "polite" });
  const reasonId = `reason-${item.id}`;
  const reason = h("input", { id: reasonId, name: "reason", placeholder: "e.g. copied text, spam, wrong topic" });
  const approve = h("button", { "data-action": "approve" }, "Approve");
  const reject = h("button", { class: "danger", "data-action": "reject" }, "Reject");
  const act = (ok, btn) => busy(btn, async () => {
    clear(slot);
    try {
      const r = await api(`/web/api/contributions/${item.id}/review`, { method: "POST",
        json: { approve: ok, reason: reason.value } });
      showOk(slot, `Recorded on chain. Contribution #${item.id} is now ${r.status} (${r.approvals} approvals, ${r.rejections} rejections).`);
      approve.disabled = reject.disabled = true;
      el.querySelector(".status").replaceWith(badge(r.status, "status"));
    } catch (err) { showError(slot, err); }
  });
  approve.addEventListener("click", () => act(true, approve));
  reject.addEventListener("click", () => act(false, reject));
  const el = h("section", { class: "card review-item", "data-id": item.id },
    h("h3", {}, link(`#/contributions/${item.id}`, `#${item.id}`), ` in ${item.datanet} `, badge(item.status, "status")),
    h("div", { class: "small" }, "by ", h("span", { class: "mono", title: item.contributor }, short(item.contributor)),
      ` · ${item.record_count} records · stake ${open(item.stake)} OPEN · `,
      h("b", { class: "at-risk" }, `at risk: ${open(item.at_risk)} OPEN`),
      ` · ${item.approvals}/${item.quorum} approvals, ${item.rejections}/${item.quorum} rejections`),
    item.previews.map((p) => h("div", { class: "preview" }, h("div", { class: "small muted" }, p.location), p.text)),
    item.reviewed ? h("p", { class: "small muted" }, "You reviewed this already.") :
      h("div", {}, h("div", { class: "row" }, h("label", { for: reasonId }, "Reason (needed to reject)"), reason),
        h("div", { class: "actions" }, approve, reject)),
    slot);
  return el;
}
