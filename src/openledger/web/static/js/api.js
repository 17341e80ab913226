// Talking to the node: JSON in and out; an error carries the node's message, field and fix.
import { currentProgress } from "./ui.js";

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `The node answered ${status}.`);
    this.status = status;
    this.field = body.field || null;
    this.fix = body.fix || null;
    this.value = body.value ?? null;
    this.body = body;
  }
}

function describe(status, body) {
  if (body && typeof body === "object") {
    if (body.message) return body;
    if (Array.isArray(body.detail)) {  // FastAPI's validation errors
      const d = body.detail[0] || {};
      const field = (d.loc || []).filter((p) => p !== "body").join(".");
      return { message: `${field || "input"}: ${d.msg || "invalid value"}.`, field };
    }
    if (typeof body.detail === "string") return { message: body.detail };
  }
  if (status >= 500) return { message: "The node had an unexpected error; its log has the details." };
  return { message: `The node answered ${status}.` };
}

async function request(path, { method = "GET", json, form } = {}) {
  const headers = { "X-OpenLedger-Web": "1", Accept: "application/json" };
  let body;
  if (json !== undefined) { headers["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = form;
  let res;
  try {
    res = await fetch(path, { method, headers, body, credentials: "same-origin" });
  } catch (e) {
    throw new ApiError(0, { message: "The node cannot be reached. Is `openledger serve` running?" });
  }
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) throw new ApiError(res.status, describe(res.status, data));
  return data;
}

// A write for an account the node holds no key for comes back as {wallet: {pending, txs,
// sign}}: the wallet signs what must be signed, sends each transaction in order (waiting for
// it to be mined, so the next one is estimated on top of it) and the node checks the hashes
// before it records anything. The caller gets the same answer as for a dev account. Each
// step is reported to `opts.progress(text)`, by default the busy button's line (ui.busy).
export async function api(path, opts = {}) {
  const progress = opts.progress || currentProgress() || (() => {});
  const data = await request(path, opts);
  // (an agent's own "wallet" is its address, a string: not a write to send)
  const offered = data && data.wallet && typeof data.wallet === "object" && data.wallet.pending;
  if (!offered || opts.method === undefined || opts.method === "GET") return data;
  return sendWithWallet(data.wallet, progress);
}

function walletError(err) {
  if (err instanceof ApiError) return err;
  return new ApiError(0, { message: `Your wallet did not send it: ${err.message || err}.`,
    fix: "approve the request in your wallet, or check its balance for gas." });
}

async function mined(eth, hash) {
  for (let i = 0; i < 600; i++) {
    const r = await eth.request({ method: "eth_getTransactionReceipt", params: [hash] });
    if (r) return r;
    await new Promise((ok) => setTimeout(ok, 500));
  }
  return null;
}

const shortHash = (hash) => `${String(hash).slice(0, 10)}…`;

export async function sendWithWallet(w, progress = () => {}) {
  const eth = window.ethereum;
  if (!eth) {
    throw new ApiError(0, { message: "This node holds no key for your account and no browser wallet is available to send it.",
      fix: "open this page in a browser with your wallet, or use the CLI with your own key." });
  }
  let signature = null;
  const hashes = [];
  const n = w.txs.length;
  try {
    if (w.sign) {
      progress("Sign the message in your wallet…");
      signature = await eth.request({ method: "personal_sign", params: [w.sign, w.txs[0]?.from] });
    }
    for (const [i, tx] of w.txs.entries()) {
      const { label, contract, ...send } = tx;
      progress(n === 1 ? `Confirm the transaction in your wallet (${label})…`
        : `Confirm ${i + 1} of ${n} transactions in your wallet (${label})…`);
      const hash = await eth.request({ method: "eth_sendTransaction", params: [send] });
      hashes.push(hash);
      progress(`Waiting for ${shortHash(hash)} to be mined…`);
      await mined(eth, hash);
    }
  } catch (err) { throw walletError(err); }
  progress("Recording…");
  return request("/web/api/wallet/submit", { method: "POST", json: { pending: w.pending, hashes, signature } });
}
