// Datanets: a searchable list; one datanet's contributions, contributors, snapshots, access
// prices (set by its owner; a priced snapshot's export is paid first); contribute.
import { api } from "../api.js";
import { badge, busy, clear, errorBox, field, h, link, open, short, showError, showOk, when } from "../ui.js";
import { me } from "../state.js";

export async function render(view, route) {
  if (route.args[0]) return renderOne(view, route.args[0]);
  view.append(h("h1", {}, "Datanets"));
  const search = field({ label: "Search datanets", name: "q", type: "search",
    attrs: { placeholder: "name or description", autocomplete: "off" } });
  view.append(search);
  const list = h("div", { class: "grid", id: "datanet-list" });
  view.append(list);
  const data = await api("/datanets?limit=500");
  const draw = () => {
    const q = search.querySelector("input").value.trim().toLowerCase();
    clear(list);
    const items = data.items.filter((d) => !q || d.name.toLowerCase().includes(q) ||
      (d.description || "").toLowerCase().includes(q));
    if (!items.length) list.append(h("p", { class: "muted" }, q ? "No datanet matches." : "No datanets yet."));
    for (const d of items) {
      list.append(h("a", { href: `#/datanets/${encodeURIComponent(d.name)}`, class: "card datanet-card",
                           style: "text-decoration:none;color:inherit", "data-name": d.name },
        h("h3", {}, d.name), h("p", { class: "small muted" }, d.description || "no description"),
        h("div", { class: "small" }, `${d.validators.length} validators · quorum ${d.quorum} · min stake ${open(d.min_stake)} OPEN`)));
    }
  };
  search.querySelector("input").addEventListener("input", draw);
  draw();
  if (me()) view.append(createForm());
}

function createForm() {
  const slot = h("div", { id: "create-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "create-submit" }, "Create on chain");
  const form = h("form", { id: "create-form" },
    field({ label: "Name", name: "name", help: "Lower-case letters, digits and dashes, e.g. medical-qa.", attrs: { required: true } }),
    field({ label: "Description", name: "description", help: "What belongs in it (validators judge contributions by it)." }),
    field({ label: "Validators", name: "validators", help: "Comma-separated addresses (on the devnet also account names: bob,carol).", attrs: { required: true } }),
    h("div", { class: "row inline" },
      field({ label: "Quorum", name: "quorum", type: "number", value: 1, help: "Approvals (or rejections) that decide.", attrs: { min: 1, step: 1 } }),
      field({ label: "Minimum stake (OPEN)", name: "min_stake", type: "number", value: 10, help: "What a contributor risks per contribution.", attrs: { min: 0, step: "any" } })),
    h("div", { class: "actions" }, submit), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      try {
        const d = await api("/web/api/datanets", { method: "POST", json: { name: form.name.value,
          description: form.description.value, validators: form.validators.value.split(","),
          quorum: Number(form.quorum.value), min_stake: form.min_stake.value } });
        showOk(slot, `Datanet ${d.name} created on chain.`);
        slot.append(link(`#/datanets/${encodeURIComponent(d.name)}`, `Open ${d.name}`));
      } catch (err) { showError(slot, err, err.field || null); }
    });
  });
  return h("details", { class: "card", id: "create" }, h("summary", {}, "Create a datanet"), form);
}

function contributorsOf(items) {
  const by = new Map();
  for (const c of items) {
    const row = by.get(c.contributor) || { contributor: c.contributor, n: 0, approved: 0, records: 0, stake: 0n };
    row.n += 1; row.records += c.status === "approved" ? c.record_count : 0;
    row.approved += c.status === "approved" ? 1 : 0; row.stake += BigInt(c.stake);
    by.set(c.contributor, row);
  }
  return [...by.values()].sort((a, b) => b.records - a.records);
}

async function renderOne(view, name) {
  const dn = await api(`/datanets/${encodeURIComponent(name)}`);
  const contribs = await api(`/datanets/${encodeURIComponent(name)}/contributions?limit=500`);
  const snaps = await api(`/datanets/${encodeURIComponent(name)}/snapshots`);
  const prices = await api(`/datanets/${encodeURIComponent(name)}/access`);
  view.append(h("p", { class: "small" }, link("#/datanets", "← Datanets")));
  view.append(h("h1", {}, dn.name));
  view.append(h("p", { class: "muted" }, dn.description || ""));
  view.append(h("div", { class: "kpis" },
    h("div", { class: "kpi" }, h("b", {}, short(dn.owner)), h("span", {}, "owner")),
    h("div", { class: "kpi" }, h("b", {}, `${dn.quorum} of ${dn.validators.length}`), h("span", {}, "validators needed")),
    h("div", { class: "kpi" }, h("b", {}, open(dn.min_stake)), h("span", {}, "min stake, OPEN")),
    h("div", { class: "kpi" }, h("b", {}, snaps.total), h("span", {}, "snapshots"))));
  const cols = h("div", { class: "cols" });
  view.append(cols);
  cols.append(contributeForm(dn));
  const people = contributorsOf(contribs.items);
  cols.append(h("section", { class: "card" }, h("h2", {}, "Contributors"),
    people.length ? h("div", { class: "table-wrap" }, h("table", {}, h("thead", {}, h("tr", {},
      h("th", {}, "account"), h("th", {}, "contributions"), h("th", {}, "approved records"), h("th", {}, "staked"))),
      h("tbody", {}, people.map((p) => h("tr", {}, h("td", { class: "mono", title: p.contributor }, short(p.contributor)),
        h("td", {}, `${p.approved} / ${p.n}`), h("td", {}, p.records), h("td", {}, open(p.stake.toString())))))))
      : h("p", { class: "muted" }, "No contributions yet.")));

  view.append(h("section", { class: "card" }, h("h2", {}, `Contributions (${contribs.total})`),
    h("div", { class: "table-wrap" }, h("table", { id: "contributions" }, h("thead", {}, h("tr", {},
      h("th", {}, "#"), h("th", {}, "contributor"), h("th", {}, "status"), h("th", {}, "records"),
      h("th", {}, "stake"), h("th", { class: "hide-sm" }, "files"), h("th", { class: "hide-sm" }, "when"))),
    h("tbody", {}, contribs.items.map((c) => h("tr", { "data-id": c.id },
      h("td", {}, link(`#/contributions/${c.id}`, `#${c.id}`)), h("td", { class: "mono", title: c.contributor }, short(c.contributor)),
      h("td", {}, badge(c.status), c.status === "rejected" && c.slashed !== "0" ? h("div", { class: "small muted" }, `slashed ${open(c.slashed)}`) : null),
      h("td", {}, c.record_count), h("td", {}, open(c.stake)),
      h("td", { class: "hide-sm small" }, (c.files || []).map((f) => f.name || f).join(", ")),
      h("td", { class: "hide-sm small" }, when(c.created_at)))))))));

  view.append(accessCard(dn, prices));

  const snapSlot = h("div");
  const snapCard = h("section", { class: "card" }, h("h2", {}, "Snapshots"));
  if (me() && me().address === dn.owner) {
    const b = h("button", { class: "secondary", id: "take-snapshot" }, "Freeze a new snapshot");
    b.addEventListener("click", () => busy(b, async () => {
      try { const s = await api(`/web/api/datanets/${encodeURIComponent(name)}/snapshots`, { method: "POST" });
        showOk(snapSlot, `Snapshot @${s.version} committed on chain (root ${short(s.root)}).`); }
      catch (err) { showError(snapSlot, err); }
    }));
    snapCard.append(h("div", { class: "actions" }, b), snapSlot);
  }
  snapCard.append(snaps.items.length ? h("div", { class: "table-wrap" }, h("table", { id: "snapshots" }, h("thead", {}, h("tr", {},
    h("th", {}, "version"), h("th", {}, "records"), h("th", {}, "root"), h("th", { class: "hide-sm" }, "when"), h("th", {}, "export"))),
    h("tbody", {}, snaps.items.map((s) => h("tr", { "data-version": s.version }, h("td", {}, `@${s.version}`), h("td", {}, s.record_count),
      h("td", { class: "mono", title: s.root }, short(s.root)), h("td", { class: "hide-sm small" }, when(s.created_at)),
      exportCell(name, s.version, prices))))))
    : h("p", { class: "muted" }, "No snapshot yet."));
  view.append(snapCard);
}

// What reading the datanet costs, and for its owner the form that sets it (on chain, each
// price at most governance's max_access_price). The fees go to the snapshot's contributors
// (pro rata to approved records) and stakers at the next epoch.
function accessCard(dn, prices) {
  const line = h("p", { id: "access-prices" });
  const draw = (p) => {
    clear(line);
    if (p.export === "0" && p.train === "0") line.append("Free to export and to train on.");
    else line.append(`${p.export === "0" ? "Exports are free" : `${open(p.export)} OPEN per snapshot export`} · `,
      `${p.train === "0" ? "training is free" : `${open(p.train)} OPEN per training job`}. Paid before any data leaves, to the snapshot's contributors and stakers; its contributors and the owner read free.`);
  };
  draw(prices);
  const card = h("section", { class: "card", id: "access" }, h("h2", {}, "Access"), line);
  if (!me() || me().address !== dn.owner) return card;
  const slot = h("div", { id: "price-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "price-submit" }, "Set prices on chain");
  const bound = `At most ${open(prices.max_access_price)} OPEN (governance's max_access_price); 0 is free.`;
  const form = h("form", { id: "price-form" }, h("div", { class: "row inline" },
    field({ label: "Per snapshot export (OPEN)", name: "export", type: "number", value: open(prices.export).replace(/,/g, ""), help: bound, attrs: { min: 0, step: "any", required: true } }),
    field({ label: "Per training job (OPEN)", name: "train", type: "number", value: open(prices.train).replace(/,/g, ""), help: bound, attrs: { min: 0, step: "any", required: true } })),
    h("div", { class: "actions" }, submit), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      try {
        const p = await api(`/web/api/datanets/${encodeURIComponent(dn.name)}/access`, { method: "PUT",
          json: { export: form.export.value, train: form.train.value } });
        draw(p);
        showOk(slot, `Prices set on chain: ${open(p.export)} OPEN per export, ${open(p.train)} OPEN per training job.`);
      } catch (err) { showError(slot, err, err.field === "export" ? "Per snapshot export" : err.field === "train" ? "Per training job" : null); }
    });
  });
  card.append(form);
  return card;
}

// A snapshot's downloads: free ones for anyone; a priced one through the signed-in account,
// which pays first unless it contributed, owns the datanet or paid already.
function exportCell(name, version, prices) {
  const cell = h("td", { class: "export" });
  const files = (base) => [link(`${base}?format=jsonl`, "jsonl"), " ", link(`${base}?format=parquet`, "parquet")];
  const path = `/datanets/${encodeURIComponent(name)}/snapshots/${version}/export`;
  if (prices.export === "0") { cell.append(...files(path)); return cell; }
  if (!me()) { cell.append(`${open(prices.export)} OPEN · `, link("#/signin", "sign in")); return cell; }
  const mine = () => { clear(cell).append(...files(`/web/api${path}`)); };
  api(`/datanets/${encodeURIComponent(name)}/access?version=${version}&kind=export&account=${encodeURIComponent(me().address)}`)
    .then((doc) => {
      if (!doc.quote.due) { mine(); return; }
      const b = h("button", { class: "secondary small pay-export" }, `Pay ${open(doc.quote.price)} OPEN to export`);
      const slot = h("div", { class: "small", "aria-live": "polite" });
      b.addEventListener("click", () => busy(b, async () => {
        try {
          await api(`/web/api/datanets/${encodeURIComponent(name)}/access`, { method: "POST", json: { version, kind: "export" } });
          mine();
        } catch (err) { showError(slot, err); }
      }));
      clear(cell).append(b, slot);
    })
    .catch((err) => showError(cell, err));
  return cell;
}

function contributeForm(dn) {
  const card = h("section", { class: "card", id: "contribute" }, h("h2", {}, "Contribute"));
  if (!me()) {
    card.append(h("p", { class: "notice" }, "Sign in to contribute. ", link("#/signin", "Sign in")));
    return card;
  }
  const files = h("input", { type: "file", id: "f-files", name: "files", multiple: true,
    accept: ".txt,.md,.jsonl,.csv,.parquet", "aria-describedby": "f-files-help" });
  const fileList = h("ul", { class: "small", id: "file-list" });
  const status = h("div", { id: "contribute-status", "aria-live": "polite" });
  const stake = field({ label: "Stake (OPEN)", name: "stake", type: "number", value: open(dn.min_stake).replace(/,/g, ""),
    help: `At least ${open(dn.min_stake)} OPEN. Returned after approval (and a delay); a rejection slashes part of it.`,
    attrs: { min: "0", step: "any", required: true } });
  const column = field({ label: "Text column (CSV / Parquet, optional)", name: "column",
    help: "Which column holds the text, if the file has no 'text' or prompt/completion columns." });
  const submit = h("button", { type: "submit", id: "contribute-submit" }, "Contribute");
  const form = h("form", { id: "contribute-form" },
    h("div", { class: "row" }, h("label", { for: "f-files" }, "Files"), files,
      h("div", { class: "help", id: "f-files-help" }, ".txt .md .jsonl .csv .parquet — every record is checked before anything is written."), fileList),
    stake, column, h("div", { class: "actions" }, submit), status);
  const drawFiles = (errorFor = null, err = null) => {
    clear(fileList);
    for (const f of files.files) {
      const li = h("li", { "data-file": f.name }, `${f.name} (${f.size.toLocaleString("en")} bytes)`);
      if (errorFor === f.name) li.append(errorBox(err, err.body.location ? `${f.name}, ${err.body.location}` : f.name));
      fileList.append(li);
    }
  };
  files.addEventListener("change", () => { clear(status); drawFiles(); });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      clear(status); drawFiles();
      if (!files.files.length) { showError(status, { message: "Choose at least one file." }); return; }
      const fd = new FormData();
      for (const f of files.files) fd.append("files", f, f.name);
      fd.append("stake", form.stake.value);
      if (form.column.value) fd.append("column", form.column.value);
      try {
        const r = await api(`/web/api/datanets/${encodeURIComponent(dn.name)}/contributions`, { method: "POST", form: fd });
        showOk(status, `Contribution #${r.contribution_id} submitted: ${r.record_count ?? ""} records, stake ${open(r.stake)} OPEN. Validators will review it.`);
        status.append(h("p", {}, link(`#/contributions/${r.contribution_id}`, "See it")));
      } catch (err) {
        const file = err.body && err.body.file;
        if (file && [...files.files].some((f) => f.name === file)) drawFiles(file, err);
        else showError(status, err, err.field === "stake" ? "Stake" : null);
      }
    });
  });
  card.append(form);
  return card;
}
