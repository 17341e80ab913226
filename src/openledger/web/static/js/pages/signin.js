// Sign in: a browser wallet (EIP-4361 message signed with personal_sign), or on the devnet
// one of the node's dev accounts (clearly marked; the node refuses them on other chains).
import { api } from "../api.js";
import { busy, h, short, showError } from "../ui.js";
import { sessionChanged } from "../app.js";
import { state } from "../state.js";

async function walletSignIn() {
  const eth = window.ethereum;
  const [address] = await eth.request({ method: "eth_requestAccounts" });
  const chainHex = await eth.request({ method: "eth_chainId" });
  const want = state.info.chain_id;
  if (parseInt(chainHex, 16) !== want) {
    throw { message: `Your wallet is on chain id ${parseInt(chainHex, 16)}; this node runs on chain id ${want}.`,
            fix: `switch the wallet to chain id ${want} and try again.` };
  }
  const { message } = await api("/web/auth/message", { method: "POST", json: { address } });
  const signature = await eth.request({ method: "personal_sign", params: [message, address] });
  await api("/web/auth/verify", { method: "POST", json: { message, signature } });
}

export async function render(view) {
  view.append(h("h1", {}, "Sign in"));
  const info = state.info;
  const slot = h("div", { id: "signin-error" });
  if (info.session) {
    view.append(h("div", { class: "ok" }, `Signed in as ${info.session.dev || info.session.address}.`));
  }
  const wallet = h("section", { class: "card" }, h("h2", {}, "Browser wallet"),
    h("p", { class: "small muted" }, "Your wallet signs a Sign-In with Ethereum (EIP-4361) message: a single-use nonce, this node's address and chain id. No transaction, no fee."));
  if (window.ethereum) {
    const b = h("button", { id: "wallet-signin" }, "Sign in with wallet");
    b.addEventListener("click", () => busy(b, async () => {
      try {
        await walletSignIn();
        await sessionChanged(); location.hash = "#/";
      } catch (err) {
        // The API's message, or the wallet's (a refusal in the wallet is not an error of ours)
        const e = err.code ? { message: err.message, fix: "approve the request in your wallet." } : err;
        showError(slot, e);
      }
    }));
    wallet.append(b);
  } else {
    wallet.append(h("p", { class: "notice small" }, "No browser wallet found (window.ethereum). Install one, or on the devnet use a dev account below."));
  }
  view.append(wallet, slot);
  if (info.devnet && info.dev_accounts.length) {
    const list = h("div", { class: "grid" });
    for (const a of info.dev_accounts) {
      const b = h("button", { class: "secondary", "data-dev": a.name }, `Sign in as ${a.name}`);
      b.addEventListener("click", () => busy(b, async () => {
        try {
          await api("/web/auth/dev", { method: "POST", json: { name: a.name } });
          await sessionChanged();
          location.hash = "#/";
        } catch (err) { showError(slot, err); }
      }));
      list.append(h("div", { class: "card" }, h("div", {}, h("b", {}, a.name), " ",
        h("span", { class: "badge dev" }, "dev account")), h("div", { class: "mono small muted" }, short(a.address)), b));
    }
    view.append(h("section", {}, h("h2", {}, "Dev accounts (devnet only)"),
      h("p", { class: "small notice" }, `This node runs the local devnet (chain id ${info.chain_id}). These accounts' keys are public (anvil's test mnemonic) and the node signs for them; they are refused on any other chain.`),
      list));
  } else if (!info.devnet) {
    view.append(h("p", { class: "small muted" }, `Chain id ${info.chain_id}: dev accounts are not offered here.`));
  }
}
