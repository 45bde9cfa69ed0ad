// A key's usage: who used it, which operations, calls per day with failures, and its last use
// (GetKeyLastUsage), from CloudTrail LookupEvents on the key's ARN over a time window.

import { kms, lookupEvents, setRegion } from "../aws";
import { barChart, errorBox, facts, h, section, table, when } from "../ui";
import { keyPath } from "./key";

const MAX_PAGES = 20;

/** The usage page of a key. */
export function usagePage(keyRegion: string, keyId: string): HTMLElement {
  setRegion(keyRegion);
  const days = h("input", { id: "usage-days", type: "number", min: "1", max: "90", value: "30" });
  const out = h("div", { id: "usage-results" });
  const load = async () => {
    out.setAttribute("aria-busy", "true");
    out.replaceChildren(h("p", { class: "loading" }, "Reading the trail…"));
    try {
      out.replaceChildren(await usage(keyId, Number(days.value) || 30));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    } finally {
      out.setAttribute("aria-busy", "false");
    }
  };
  const form = h("form", { class: "toolbar", "aria-label": "Time window" },
    h("label", { for: "usage-days" }, "Last days", days), h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (e) => { e.preventDefault(); load(); });
  load();
  return h("div", { "data-title": `Usage of ${keyId}` },
    h("p", {}, h("a", { href: keyPath(keyRegion, keyId) }, "← Key")),
    h("h1", {}, `Usage of ${keyId}`),
    section("Last use", async () => {
      const u = await kms("GetKeyLastUsage", { KeyId: keyId });
      const last = u.KeyLastUsage;
      return facts([
        ["Last operation", last?.Operation ?? "never used"],
        ["At", when(last?.Timestamp)],
        ["Request id", last?.KmsRequestId],
        ["Tracked since", when(u.TrackingStartDate)],
      ]);
    }, "last-use"),
    form, out);
}

async function usage(keyId: string, days: number): Promise<HTMLElement> {
  const arn = (await kms("DescribeKey", { KeyId: keyId })).KeyMetadata.Arn;
  const end = Date.now() / 1000;
  const start = end - days * 86400;
  const events: any[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const answer = await lookupEvents({
      LookupAttributes: [{ AttributeKey: "ResourceName", AttributeValue: arn }],
      StartTime: start, EndTime: end, MaxResults: 50, ...(token ? { NextToken: token } : {}),
    });
    for (const e of answer.Events ?? []) {
      let record: any = {};
      try { record = JSON.parse(e.CloudTrailEvent); } catch { /* counted without details */ }
      events.push({ ...e, record });
    }
    token = answer.NextToken;
    pages++;
  } while (token && pages < MAX_PAGES);
  const perDay = new Map<string, { value: number; failed: number }>();
  for (let t = start; t <= end + 1; t += 86400) perDay.set(new Date(t * 1000).toISOString().slice(0, 10), { value: 0, failed: 0 });
  const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const byOperation = new Map<string, number>(), byUser = new Map<string, number>();
  const failures: any[] = [];
  for (const e of events) {
    const day = when(e.EventTime).slice(0, 10);
    const d = perDay.get(day) ?? { value: 0, failed: 0 };
    d.value++;
    if (e.record.errorCode) { d.failed++; failures.push(e); }
    perDay.set(day, d);
    count(byOperation, e.EventName);
    count(byUser, e.record.userIdentity?.arn ?? e.Username ?? "unknown");
  }
  const sorted = (m: Map<string, number>) => [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, String(v)]);
  return h("div", {},
    h("p", {}, `${events.length} calls on this key in the last ${days} days${token ? " (the first " + events.length + " read)" : ""}, ${failures.length} failed.`),
    barChart("Calls per day", [...perDay.entries()].map(([label, v]) => ({ label, ...v }))),
    table("By operation", ["Operation", "Calls"], sorted(byOperation)),
    table("By caller", ["Caller", "Calls"], sorted(byUser)),
    table("Failures", ["Time", "Operation", "Caller", "Error"], failures.slice(0, 50).map((e) => [
      when(e.EventTime), e.EventName, e.record.userIdentity?.arn ?? "", `${e.record.errorCode}${e.record.errorMessage ? ": " + e.record.errorMessage : ""}`,
    ])));
}
