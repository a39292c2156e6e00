// The HTTP API client: every request of the dashboard goes through here.
// It adds the bearer token (kept in sessionStorage) and, on a 401, asks for one and retries
// once. API errors become ApiError carrying the problem+json `detail` and `param`.
// It does not render anything but the token dialog.

const TOKEN_KEY = "mcp-audit-token";

export class ApiError extends Error {
  constructor(status, detail, param) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.param = param || null;
  }
}

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

let pendingToken = null;

// One dialog at a time, however many requests answered 401 together.
function askToken(reason) {
  if (pendingToken) return pendingToken;
  const dialog = document.getElementById("token-dialog");
  const input = dialog.querySelector("input");
  dialog.querySelector(".token-reason").textContent = reason;
  input.value = "";
  pendingToken = new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        pendingToken = null;
        const value = dialog.returnValue === "ok" ? input.value.trim() : "";
        if (value) sessionStorage.setItem(TOKEN_KEY, value);
        resolve(Boolean(value));
      },
      { once: true },
    );
    dialog.showModal();
    input.focus();
  });
  return pendingToken;
}

async function problemOf(resp) {
  let detail = `${resp.status} ${resp.statusText}`;
  let param = null;
  try {
    const body = await resp.json();
    if (body && body.detail) detail = body.detail;
    if (body && body.param) param = body.param;
  } catch {
    // not a problem body; keep the status line
  }
  return new ApiError(resp.status, detail, param);
}

/// Query string from an object, leaving out empty values.
export function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : "";
}

export async function request(method, path, { params, body, signal } = {}) {
  const url = path + qs(params);
  for (let attempt = 0; attempt < 2; attempt++) {
    const headers = { Accept: "application/json", ...authHeaders() };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const resp = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    if (resp.status === 401 && attempt === 0) {
      const had = Boolean(sessionStorage.getItem(TOKEN_KEY));
      if (had) sessionStorage.removeItem(TOKEN_KEY);
      const got = await askToken(had ? "The token was refused." : "This collector needs a token.");
      if (got) continue;
    }
    if (!resp.ok) throw await problemOf(resp);
    return resp.json();
  }
  throw new ApiError(401, "a token is needed: reload the page and enter one", null);
}

export const get = (path, params, signal) => request("GET", path, { params, signal });
export const post = (path, body) => request("POST", path, { body });

/// Follows `GET /api/v1/tail` until `signal` aborts. fetch instead of EventSource, because
/// EventSource cannot send the Authorization header.
export async function tail(q, signal, onEvent, onLagged) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const resp = await fetch("/api/v1/tail" + qs({ q }), {
      headers: { Accept: "text/event-stream", ...authHeaders() },
      signal,
    });
    if (resp.status === 401 && attempt === 0 && (await askToken("This collector needs a token."))) {
      continue;
    }
    if (!resp.ok) throw await problemOf(resp);
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        let type = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) type = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        if (type === "event" && data.length) onEvent(JSON.parse(data.join("\n")));
        else if (type === "lagged") onLagged(Number(data.join("")));
      }
    }
  }
}
