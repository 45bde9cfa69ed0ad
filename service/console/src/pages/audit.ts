// The audit trail: CloudTrail LookupEvents by one attribute and a time window, a page at a time,
// with each record's full JSON, and a filter by request id over what was found.

import { lookupEvents } from "../aws";
import { errorBox, h, highlightedJson, status, table, when } from "../ui";

const ATTRIBUTES = ["EventName", "Username", "ResourceName", "EventId", "EventSource", "ReadOnly", "AccessKeyId", "ResourceType"];

/** The audit page; `params` may preset `attribute`, `value`. */
export function auditPage(params: URLSearchParams): HTMLElement {
  const attribute = h("select", { id: "audit-attribute" },
    h("option", { value: "" }, "(any)"),
    ...ATTRIBUTES.map((a) => h("option", { value: a, selected: params.get("attribute") === a }, a)));
  const value = h("input", { id: "audit-value", type: "text", value: params.get("value") ?? "" });
  const start = h("input", { id: "audit-start", type: "datetime-local", step: "1" });
  const end = h("input", { id: "audit-end", type: "datetime-local", step: "1" });
  const requestId = h("input", { id: "audit-request-id", type: "search" });
  const results = h("div", { id: "audit-results", "aria-live": "polite" });
  const detail = h("div", { id: "audit-detail" });
  let found: any[] = [];
  let nextToken: string | undefined;

  const render = () => {
    const wanted = requestId.value.trim();
    const shown = found.filter((e) => !wanted || e.record.requestID === wanted);
    results.replaceChildren(
      table(`Events (${shown.length} of ${found.length} found)`, ["Time", "Event", "User", "Resources", "Error", "Request id", ""],
        shown.map((e) => [
          when(e.EventTime),
          e.EventName,
          e.Username ?? "",
          (e.Resources ?? []).map((r: any) => r.ResourceName).join(", "),
          e.record.errorCode ?? "",
          e.record.requestID ?? "",
          h("button", { type: "button", class: "show-record", "data-event-id": e.EventId,
            "aria-label": `Show record of ${e.EventName} at ${when(e.EventTime)} (${e.EventId})`,
            onclick: () => detail.replaceChildren(h("h2", {}, `Record ${e.EventId}`), highlightedJson(e.CloudTrailEvent, `Record ${e.EventId}`)) },
          "Show record"),
        ])),
      nextToken ? h("button", { type: "button", id: "audit-more", onclick: () => search(false) }, "More events") : "");
  };
  const search = async (fresh: boolean) => {
    if (fresh) { found = []; nextToken = undefined; detail.replaceChildren(); }
    results.setAttribute("aria-busy", "true");
    results.prepend(h("p", { class: "loading" }, "Searching…"));
    try {
      const body: any = { MaxResults: 50 };
      if (attribute.value) body.LookupAttributes = [{ AttributeKey: attribute.value, AttributeValue: value.value }];
      if (start.value) body.StartTime = new Date(`${start.value}Z`).getTime() / 1000;
      if (end.value) body.EndTime = new Date(`${end.value}Z`).getTime() / 1000;
      if (nextToken) body.NextToken = nextToken;
      const answer = await lookupEvents(body);
      for (const e of answer.Events ?? []) {
        let record: any = {};
        try { record = JSON.parse(e.CloudTrailEvent); } catch { /* shown as text */ }
        found.push({ ...e, record });
      }
      nextToken = answer.NextToken;
      render();
      status(`${found.length} events found.`);
    } catch (e) {
      results.replaceChildren(errorBox(e));
    } finally {
      results.setAttribute("aria-busy", "false");
    }
  };
  requestId.addEventListener("input", render);
  const form = h("form", { class: "toolbar", "aria-label": "Search the trail" },
    h("label", { for: "audit-attribute" }, "Attribute", attribute),
    h("label", { for: "audit-value" }, "Value", value),
    h("label", { for: "audit-start" }, "From (UTC)", start),
    h("label", { for: "audit-end" }, "To (UTC)", end),
    h("button", { type: "submit", id: "audit-search" }, "Search"),
    h("label", { for: "audit-request-id" }, "Request id (filters what was found)", requestId));
  form.addEventListener("submit", (e) => { e.preventDefault(); search(true); });
  if (params.get("value")) search(true);
  return h("div", { "data-title": "Audit" }, h("h1", {}, "Audit trail"), form, results, detail);
}

