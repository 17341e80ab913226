// Who is signed in (from /web/auth/session), shared by the pages.
import { api } from "./api.js";

export const state = { info: null };

export async function refreshSession() {
  state.info = await api("/web/auth/session");
  return state.info;
}

export function me() { return state.info && state.info.session; }
