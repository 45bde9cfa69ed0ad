// Small DOM helpers shared by the pages: element building, loading and error states that are
// always visible as text (never colour alone), JSON with syntax highlighting, and a bar chart
// that comes with its table.

import { AwsError } from "./aws";

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | boolean | ((e: Event) => void) | undefined>;

/** Build an element: `h("button", { onclick: f, type: "button" }, "Save")`. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === "function") el.addEventListener(name.replace(/^on/, ""), value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, value);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** The text of an error as the console shows it (AWS's code and message, as AWS wrote them). */
export function errorText(e: unknown): string {
  if (e instanceof AwsError) return e.describe();
  return String(e);
}

/** An error box (role=alert, so screen readers announce it). */
export function errorBox(e: unknown): HTMLElement {
  return h("p", { class: "error", role: "alert" }, h("strong", {}, "Error: "), errorText(e));
}

/** Announce a short status line ("Saved.", "Loading keys…"). */
export function status(text: string): void {
  const el = document.getElementById("status");
  if (el) el.textContent = text;
}

/**
 * A section that loads on its own: a heading, "Loading…" until `load` resolves, then what it
 * rendered, or its error (other sections go on).
 */
export function section(title: string, load: () => Promise<Node>, id?: string): HTMLElement {
  const body = h("div", { class: "section-body", "aria-busy": "true" }, h("p", { class: "loading" }, "Loading…"));
  const el = h("section", { id, "aria-labelledby": id ? `${id}-h` : undefined },
    h("h2", { id: id ? `${id}-h` : undefined }, title), body);
  load().then(
    (node) => body.replaceChildren(node),
    (e) => body.replaceChildren(errorBox(e)),
  ).finally(() => body.setAttribute("aria-busy", "false"));
  return el;
}

/** Run an action from a button: disabled while it runs, its result or error shown next to it. */
export function action(label: string, run: () => Promise<string | void>, attrs: Attrs = {}): HTMLElement {
  const out = h("span", { class: "result", "aria-live": "polite" });
  const button = h("button", { type: "button", ...attrs }, label);
  button.addEventListener("click", async () => {
    button.disabled = true;
    out.setAttribute("aria-busy", "true");
    out.replaceChildren(h("span", { class: "loading" }, "Working…"));
    try {
      const done = await run();
      out.replaceChildren(h("span", { class: "ok" }, done || "Done."));
    } catch (e) {
      out.replaceChildren(errorBox(e));
    } finally {
      button.disabled = false;
      out.setAttribute("aria-busy", "false");
    }
  });
  return h("span", { class: "action" }, button, out);
}

/** A definition list of label/value pairs (values that are empty are left out). */
export function facts(pairs: [string, Child][]): HTMLElement {
  const dl = h("dl", { class: "facts" });
  for (const [k, v] of pairs) {
    if (v === undefined || v === null || v === "") continue;
    dl.append(h("dt", {}, k), h("dd", {}, v));
  }
  return dl;
}

/** A table with a caption, header cells and rows. */
export function table(caption: string, headers: string[], rows: Child[][]): HTMLElement {
  if (rows.length === 0) return h("p", { class: "empty" }, `${caption}: none.`);
  return h("div", { class: "table-wrap" },
    h("table", {},
      h("caption", {}, caption),
      h("thead", {}, h("tr", {}, ...headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c, i) => h("td", { "data-label": headers[i] ?? "" }, c)))))));
}

/** A date as the console shows it (ISO, UTC). */
export function when(value: unknown): string {
  if (value === undefined || value === null || value === "") return "";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(String(value));
  return isNaN(date.getTime()) ? String(value) : date.toISOString().replace(".000Z", "Z");
}

/** JSON, pretty-printed, with its tokens in spans for highlighting (the text reads the same without). */
export function highlightedJson(value: unknown, label: string): HTMLElement {
  const text = typeof value === "string" ? prettyJson(value) : JSON.stringify(value, null, 2);
  const code = h("code", {});
  const token = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;
  let last = 0;
  for (const m of text.matchAll(token)) {
    const at = m.index ?? 0;
    code.append(text.slice(last, at));
    if (m[1] && m[2]) code.append(h("span", { class: "j-key" }, m[1]), m[2]);
    else if (m[1]) code.append(h("span", { class: "j-str" }, m[1]));
    else if (m[3]) code.append(h("span", { class: "j-num" }, m[3]));
    else code.append(h("span", { class: "j-lit" }, m[4] ?? ""));
    last = at + m[0].length;
  }
  code.append(text.slice(last));
  return h("pre", { class: "json", tabindex: "0", "aria-label": label }, code);
}

function prettyJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

/** A bar chart (SVG) of labelled counts, with the same figures as a table beside it. */
export function barChart(title: string, bars: { label: string; value: number; failed?: number }[]): HTMLElement {
  const max = Math.max(1, ...bars.map((b) => b.value));
  const width = 640, height = 180, gap = 4;
  const barWidth = bars.length ? Math.max(4, (width - gap * bars.length) / bars.length) : width;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 20}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${bars.map((b) => `${b.label} ${b.value}`).join(", ")}`);
  bars.forEach((b, i) => {
    const x = i * (barWidth + gap);
    const barHeight = (b.value / max) * height;
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("x", String(x));
    rect.setAttribute("y", String(height - barHeight));
    rect.setAttribute("width", String(barWidth));
    rect.setAttribute("height", String(barHeight));
    rect.setAttribute("class", "bar");
    const tip = document.createElementNS("http://www.w3.org/2000/svg", "title");
    tip.textContent = `${b.label}: ${b.value} calls${b.failed ? `, ${b.failed} failed` : ""}`;
    rect.append(tip);
    svg.append(rect);
    if (bars.length <= 16 || i % Math.ceil(bars.length / 8) === 0) {
      const t = document.createElementNS("http://www.w3.org/2000/svg", "text");
      t.setAttribute("x", String(x));
      t.setAttribute("y", String(height + 15));
      t.setAttribute("class", "axis");
      t.textContent = b.label.slice(5);
      svg.append(t);
    }
  });
  return h("figure", { class: "chart" }, h("figcaption", {}, title), svg,
    table(`${title} (figures)`, ["Day", "Calls", "Failed"],
      bars.map((b) => [b.label, String(b.value), String(b.failed ?? 0)])));
}
