// What the dashboard learns once from the collector and reuses: the field registry
// (`GET /api/v1/fields`) and, per time range, which events the rules' findings cite.

import { get } from "./api.js";

let fieldsPromise = null;

/// The fields of the query language, as the registry declares them.
export function fields() {
  if (!fieldsPromise) {
    fieldsPromise = get("/api/v1/fields").then((r) => r.fields).catch((err) => {
      fieldsPromise = null;
      throw err;
    });
  }
  return fieldsPromise;
}

/// The outcome values, in the registry's order (the histogram stacks in this order).
export async function outcomes() {
  try {
    const f = (await fields()).find((x) => x.name === "outcome");
    if (f && f.values) return f.values;
  } catch {
    // the search itself will show the error
  }
  return ["ok", "error", "denied", "consent_denied", "timeout"];
}

/// event_id → findings citing it, for findings whose triggering event is in the range
/// (the newest 1,000: enough for badges on the pages a person scrolls through).
export async function findingsIndex({ start, end }) {
  const r = await get("/api/v1/findings", { since: start, until: end, limit: 1000 });
  const map = new Map();
  for (const f of r.findings) {
    for (const id of f.event_ids) {
      if (!map.has(id)) map.set(id, []);
      map.get(id).push(f);
    }
  }
  return map;
}
