// Model Factory without code: a training form with defaults and explanations, the job list,
// and a job's page with a live loss curve (train and eval), ETA, cancel/resume, evaluation
// (base vs adapter perplexity) and publishing with prices.
import { api } from "../api.js";
import { badge, busy, clear, duration, field, h, link, open, showError, showOk, when } from "../ui.js";
import { legend, lineChart } from "../charts.js";
import { onLeave, signedInOr } from "../app.js";
import { me } from "../state.js";

const DEFAULTS = { method: "lora", rank: 8, alpha: 16, lr: "1e-3", epochs: 1, batch_size: 8,
  max_seq_len: 256, target_modules: "q_proj,v_proj", eval_split: "0.1", eval_every: "", seed: 0 };

export async function render(view, route) {
  if (route.args[0] === "jobs" && route.args[1]) return renderJob(view, Number(route.args[1]));
  view.append(h("h1", {}, "Model Factory"));
  const cols = h("div", { class: "cols" });
  view.append(cols);
  const formCard = h("section", { class: "card" }, h("h2", {}, "Train an adapter"));
  cols.append(formCard);
  if (signedInOr(formCard, "start a training job")) formCard.append(await trainForm());
  const jobs = await api("/jobs?limit=20");
  cols.append(h("section", { class: "card" }, h("h2", {}, "Recent jobs"),
    jobs.items.length ? h("div", { class: "table-wrap" }, h("table", { id: "jobs" }, h("thead", {}, h("tr", {},
      h("th", {}, "job"), h("th", {}, "datanet"), h("th", {}, "status"), h("th", { class: "hide-sm" }, "created"))),
      h("tbody", {}, jobs.items.map((j) => h("tr", {},
        h("td", {}, link(`#/factory/jobs/${j.id}`, `#${j.id}`)),
        h("td", {}, j.params.datanet ? `${j.params.datanet}@${j.params.version}` : "–"),
        h("td", {}, badge(j.status)), h("td", { class: "hide-sm small" }, when(j.created_at)))))))
      : h("p", { class: "muted" }, "No jobs yet.")));
}

async function trainForm() {
  const [datanets, bases] = await Promise.all([api("/datanets?limit=500"), api("/web/api/bases")]);
  const snapshots = [];
  for (const d of datanets.items) {
    const s = await api(`/datanets/${encodeURIComponent(d.name)}/snapshots`);
    for (const v of s.items.slice().reverse()) snapshots.push([`${d.name}@${v.version}`, `${d.name} @${v.version} (${v.record_count} records)`]);
  }
  const status = h("div", { id: "train-status", "aria-live": "polite" });
  if (!snapshots.length) return h("p", { class: "notice" }, "No datanet has a snapshot yet: freeze one on its datanet page first.");
  const baseList = h("datalist", { id: "bases" }, bases.items.map((b) => h("option", { value: b })));
  const num = (label, name, help, attrs = {}) => field({ label, name, type: "number", value: DEFAULTS[name], help, attrs: { step: "any", ...attrs } });
  const submit = h("button", { type: "submit", id: "train-submit" }, "Start training");
  // A priced snapshot shows its price before anything is queued; the account pays it with
  // the job (its contributors and the datanet's owner train free).
  const priceLine = h("p", { id: "train-price", class: "small", "aria-live": "polite" });
  let quote = null;
  const showPrice = async () => {
    const [name, version] = form.datanet.value.split("@");
    const who = me() ? `&account=${encodeURIComponent(me().address)}` : "";
    try {
      const doc = await api(`/datanets/${encodeURIComponent(name)}/access?version=${version}&kind=train${who}`);
      quote = doc.quote || null;
    } catch (err) { quote = null; clear(priceLine).append(err.message); return; }
    clear(priceLine);
    if (!quote || quote.price === "0") {
      priceLine.append("Free to train on."); submit.textContent = "Start training";
    } else if (!quote.due) {
      priceLine.append(`${open(quote.price)} OPEN per training job; free for you (${quote.reason === "paid" ? `paid, access #${quote.access}` : quote.reason}).`);
      submit.textContent = "Start training";
    } else {
      priceLine.append(`${open(quote.price)} OPEN per training job, paid from your account to the snapshot's contributors and stakers before the job is queued.`);
      submit.textContent = `Pay ${open(quote.price)} OPEN and start training`;
    }
  };
  const form = h("form", { id: "train-form" },
    field({ label: "Training data (datanet snapshot)", name: "datanet", value: snapshots[0][0], options: snapshots,
      help: "A frozen, on-chain snapshot: the model's lineage names it, so its contributors can be paid." }),
    priceLine,
    field({ label: "Base model", name: "base", value: bases.items[0] || "", help: "A local Hugging Face directory or a hub id. The node's offline tiny base is listed when built (`openledger factory tiny-base`).",
      attrs: { list: "bases", required: true } }), baseList,
    field({ label: "Method", name: "method", value: DEFAULTS.method, options: [["lora", "LoRA — low-rank adapter (default)"], ["dora", "DoRA — weight-decomposed LoRA"], ["qlora", "QLoRA — 4-bit base (GPU only)"]],
      help: "How the base is adapted. LoRA trains two small matrices per targeted layer." }),
    h("div", { class: "row inline" },
      num("Rank", "rank", "Adapter size; 8 is a good start.", { min: 1, step: 1 }),
      num("Alpha", "alpha", "Scale of the update; usually 2 × rank.", { min: 0 }),
      num("Learning rate", "lr", "1e-3 for LoRA on small data.")),
    h("div", { class: "row inline" },
      num("Epochs", "epochs", "Passes over the data.", { min: 1, step: 1 }),
      num("Batch size", "batch_size", "Examples per step.", { min: 1, step: 1 }),
      num("Max sequence length", "max_seq_len", "Tokens per example (longer is cut).", { min: 8, step: 1 })),
    field({ label: "Target modules", name: "target_modules", value: DEFAULTS.target_modules,
      help: "Comma-separated layer names to adapt (e.g. q_proj,v_proj), or all-linear." }),
    h("div", { class: "row inline" },
      num("Eval split", "eval_split", "Share of examples held out to measure the eval loss.", { min: 0, max: 1 }),
      field({ label: "Evaluate every (steps)", name: "eval_every", type: "number", value: "", help: "Empty: once per epoch.", attrs: { min: 1, step: 1 } }),
      num("Seed", "seed", "Same seed, same data: same adapter.", { step: 1 })),
    h("div", { class: "actions" }, submit), status);
  form.datanet.addEventListener("change", showPrice);
  showPrice();
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      clear(status);
      const cfg = { method: form.method.value, rank: form.rank.value, alpha: form.alpha.value, lr: form.lr.value,
        epochs: form.epochs.value, batch_size: form.batch_size.value, max_seq_len: form.max_seq_len.value,
        target_modules: form.target_modules.value, eval_split: form.eval_split.value, seed: form.seed.value };
      if (form.eval_every.value) cfg.eval_every = form.eval_every.value;
      try {
        const json = { datanet: form.datanet.value, base: form.base.value, config: cfg };
        await showPrice();
        if (quote && quote.due) {
          const [name, version] = form.datanet.value.split("@");
          const paid = await api(`/web/api/datanets/${encodeURIComponent(name)}/access`, { method: "POST", json: { version: Number(version), kind: "train", base: json.base, config: cfg } });
          json.access = paid.access;
        }
        const job = await api("/web/api/jobs", { method: "POST", json });
        location.hash = `#/factory/jobs/${job.id}`;
      } catch (err) {
        showError(status, err, err.field ? `${err.field}` : null);
        const bad = err.field && form.querySelector(`[name="${err.field.replace(/^--/, "").replace(/-/g, "_")}"]`);
        if (bad) { bad.setAttribute("aria-invalid", "true"); bad.focus(); }
      }
    });
  });
  return form;
}

function eta(job, rows) {
  const last = rows[rows.length - 1];
  const epochs = Number(job.params.config.epochs || 1);
  if (!last || !last.epoch || job.status !== "running") return null;
  const frac = Math.min(1, last.epoch / epochs);
  return frac > 0 ? (last.time / frac) * (1 - frac) : null;
}

async function renderJob(view, id) {
  view.append(h("p", { class: "small" }, link("#/factory", "← Model Factory")));
  const title = h("h1", { id: "job-title" }, `Job #${id}`);
  const info = h("div", { id: "job-info" });
  const chart = h("div", { class: "card", id: "loss-chart" });
  const controls = h("div", { class: "actions", id: "job-controls" });
  const slot = h("div", { "aria-live": "polite", id: "job-status" });
  const evalCard = h("div", { id: "job-eval" });
  view.append(title, info, h("h2", {}, "Loss"), chart, controls, slot, evalCard);
  let timer = null;
  let published = false;
  const draw = async () => {
    let job, rows;
    try {
      job = await api(`/jobs/${id}`);
      rows = (await api(`/jobs/${id}/metrics`)).items;
    } catch (err) { showError(slot, err); return; }
    clear(title).append(`Job #${id} `, badge(job.status, "job-status"));
    title.dataset.status = job.status;
    const epochs = Number(job.params.config.epochs || 1);
    const last = rows[rows.length - 1];
    const frac = last ? Math.min(1, last.epoch / epochs) : 0;
    const left = eta(job, rows);
    clear(info).append(h("div", { class: "kpis" },
      h("div", { class: "kpi" }, h("b", {}, `${job.params.datanet}@${job.params.version}`), h("span", {}, "training data")),
      h("div", { class: "kpi" }, h("b", {}, last ? last.step : 0), h("span", {}, "steps")),
      h("div", { class: "kpi" }, h("b", {}, last && last.train_loss != null ? last.train_loss.toFixed(3) : "–"), h("span", {}, "train loss")),
      h("div", { class: "kpi" }, h("b", { id: "eta" }, job.status === "running" ? duration(left) : job.status === "succeeded" ? "done" : "–"), h("span", {}, "time left (ETA)"))),
    h("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100, "aria-valuenow": Math.round(100 * frac) },
      h("div", { style: `width:${(100 * (job.status === "succeeded" ? 1 : frac)).toFixed(1)}%` })),
    ...(job.error ? [h("div", { class: "error" }, job.error)] : []));
    const series = [
      { name: "train loss", points: rows.filter((r) => r.train_loss != null).map((r) => [r.step, r.train_loss]) },
      { name: "eval loss", points: rows.filter((r) => r.eval_loss != null).map((r) => [r.step, r.eval_loss]), dots: true },
    ];
    clear(chart).append(lineChart(series, { xLabel: "step", yLabel: "loss", title: "loss curve" }), legend(series));
    chart.dataset.points = String(series[0].points.length);
    chart.dataset.evalPoints = String(series[1].points.length);
    clear(controls);
    if (job.status === "queued" || job.status === "running") {
      const b = h("button", { class: "danger", id: "job-cancel" }, "Cancel");
      b.addEventListener("click", () => busy(b, async () => {
        try { await api(`/web/api/jobs/${id}/cancel`, { method: "POST" }); showOk(slot, "Cancel requested; the job stops at its next check."); }
        catch (err) { showError(slot, err); }
        draw();
      }));
      controls.append(b);
    }
    if (job.status === "failed" || job.status === "cancelled") {
      const b = h("button", { id: "job-resume" }, "Resume");
      b.addEventListener("click", () => busy(b, async () => {
        try { await api(`/web/api/jobs/${id}/resume`, { method: "POST" }); showOk(slot, "Queued again; it resumes from its last checkpoint."); }
        catch (err) { showError(slot, err); }
        draw(); poll();
      }));
      controls.append(b);
    }
    if (job.status === "succeeded" && !published) { published = true; clear(evalCard).append(evaluation(job), publishForm(job)); }
    if (!["queued", "running"].includes(job.status) && timer) { clearInterval(timer); timer = null; }
  };
  const poll = () => { if (!timer) timer = setInterval(draw, 1500); };
  onLeave(() => timer && clearInterval(timer));
  await draw();
  const status = title.dataset.status;
  if (status === "queued" || status === "running") poll();
}

function evaluation(job) {
  const r = job.result || {};
  const f = (x) => (x == null ? "–" : Number(x).toFixed(2));
  return h("section", { class: "card", id: "evaluation" }, h("h2", {}, "Evaluation"),
    h("p", { class: "small muted" }, `Perplexity on ${r.eval_examples ?? "the"} held-out examples (lower is better).`),
    h("div", { class: "kpis" },
      h("div", { class: "kpi" }, h("b", { id: "base-ppl" }, f(r.base_eval_ppl)), h("span", {}, "base model")),
      h("div", { class: "kpi" }, h("b", { id: "adapter-ppl" }, f(r.adapter_eval_ppl)), h("span", {}, "with the adapter")),
      h("div", { class: "kpi" }, h("b", {}, r.steps ?? "–"), h("span", {}, `steps (${r.train_examples ?? "?"} examples)`)),
      h("div", { class: "kpi" }, h("b", {}, r.tokens_per_s ? Math.round(r.tokens_per_s).toLocaleString("en") : "–"), h("span", {}, "tokens/s"))));
}

function publishForm(job) {
  const card = h("section", { class: "card" }, h("h2", {}, "Publish"));
  if (!signedInOr(card, "publish this model")) return card;
  const slot = h("div", { id: "publish-status", "aria-live": "polite" });
  const submit = h("button", { type: "submit", id: "publish-submit" }, "Publish on chain");
  const form = h("form", { id: "publish-form" },
    field({ label: "Model name", name: "name", value: `${job.params.datanet}-job${job.id}`, help: "2-63 lower-case letters, digits, '.', '-' or '_'." }),
    h("div", { class: "row inline" },
      field({ label: "Price in (OPEN / 1k prompt tokens)", name: "price_in", value: "0.001", type: "number", attrs: { step: "any", min: 0 } }),
      field({ label: "Price out (OPEN / 1k completion tokens)", name: "price_out", value: "0.002", type: "number", attrs: { step: "any", min: 0 } })),
    field({ label: "Attribution", name: "attribution", value: "gradient", options: [["gradient", "gradient influence"], ["spans", "matched spans (OLMoTrace style)"], ["rag", "retrieval"], ["gradient:0.7,spans:0.3", "gradient 70% + spans 30%"]],
      help: "How each answer's fee is traced to the data; the index is built with `openledger attribution build`." }),
    h("div", { class: "actions" }, submit), slot);
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    busy(submit, async () => {
      try {
        const m = await api("/web/api/models", { method: "POST", json: { job: job.id, name: form.name.value,
          price_in: form.price_in.value, price_out: form.price_out.value, attribution: form.attribution.value } });
        showOk(slot, `Published ${m.name} (model #${m.id}) at ${open(m.price_in)} / ${open(m.price_out)} OPEN per 1k tokens.`);
        slot.append(link(`#/playground?model=${encodeURIComponent(m.name)}`, "Try it in the playground"));
      } catch (err) { showError(slot, err); }
    });
  });
  card.append(form);
  return card;
}
