// Talking to the node: JSON in and out; an error carries the node's message, field and fix.
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

export async function api(path, { method = "GET", json, form } = {}) {
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
