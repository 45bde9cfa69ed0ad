// The keys of the Region: ListKeys a page at a time, each key described (keys the user may not
// describe are counted, not shown), aliases from ListAliases, filters by alias/id/description,
// tag, state and spec, and a form to create a key.

import { AwsError, kms, region, setRegion } from "../aws";
import { action, errorBox, h, status, table, when } from "../ui";
import { REGIONS } from "./signin";

const PAGE_SIZE = 20;

/** Markers of the pages seen so far (the first page has none), so Previous works. */
let markers: (string | undefined)[] = [undefined];
let pageIndex = 0;
const filters = { text: "", state: "", spec: "", tag: "" };

/** A link to a key's page. */
export function keyLink(keyRegion: string, keyId: string, text = keyId): HTMLElement {
  return h("a", { href: `#/key/${encodeURIComponent(keyRegion)}/${encodeURIComponent(keyId)}` }, text);
}

/** The keys page. */
export function keysPage(): HTMLElement {
  const list = h("div", { id: "key-list" });
  const regionSelect = h("select", { id: "key-region", "aria-label": "Region" },
    ...Array.from(new Set([region(), ...REGIONS])).map((r) =>
      h("option", { value: r, selected: r === region() }, r)));
  regionSelect.addEventListener("change", () => {
    setRegion(regionSelect.value);
    markers = [undefined];
    pageIndex = 0;
    const who = document.getElementById("who");
    if (who) who.textContent = who.textContent?.replace(/\([^)]*\)$/, `(${region()})`) ?? "";
    load(list);
  });
  const input = (id: string, label: string, key: keyof typeof filters, placeholder = "") => {
    const el = h("input", { id, type: "search", value: filters[key], placeholder });
    el.addEventListener("input", () => { filters[key] = el.value; load(list); });
    return h("label", { for: id }, label, el);
  };
  const select = (id: string, label: string, key: keyof typeof filters, options: string[]) => {
    const el = h("select", { id }, h("option", { value: "" }, "any"),
      ...options.map((o) => h("option", { value: o, selected: filters[key] === o }, o)));
    el.addEventListener("change", () => { filters[key] = el.value; load(list); });
    return h("label", { for: id }, label, el);
  };
  const page = h("div", { "data-title": "Keys" },
    h("h1", {}, "Keys"),
    h("div", { class: "toolbar", role: "group", "aria-label": "Filters" },
      h("label", { for: "key-region" }, "Region", regionSelect),
      input("filter-text", "Alias, id or description", "text"),
      input("filter-tag", "Tag (key or key=value)", "tag", "team=payments"),
      select("filter-state", "State", "state",
        ["Enabled", "Disabled", "PendingDeletion", "PendingImport", "PendingReplicaDeletion", "Unavailable", "Creating", "Updating"]),
      select("filter-spec", "Spec", "spec",
        ["SYMMETRIC_DEFAULT", "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
          "ECC_SECG_P256K1", "ECC_NIST_EDWARDS25519", "HMAC_256", "ML_DSA_65"])),
    list,
    createKeyForm(list));
  load(list);
  return page;
}

/** Load and show the current page of keys with the filters applied. */
async function load(list: HTMLElement): Promise<void> {
  const generation = String(Math.random());
  list.dataset.generation = generation;
  // Paging from the keyboard keeps focus on the pager, not lost with the old page.
  const focusedId = list.contains(document.activeElement) ? document.activeElement?.id ?? "" : "";
  list.setAttribute("aria-busy", "true");
  list.replaceChildren(h("p", { class: "loading" }, "Loading keys…"));
  try {
    const page = await kms("ListKeys", { Limit: PAGE_SIZE, ...(markers[pageIndex] ? { Marker: markers[pageIndex] } : {}) });
    const aliases = await allAliases().catch(() => null);
    const described = await Promise.all((page.Keys ?? []).map(async (k: any) => {
      try {
        return (await kms("DescribeKey", { KeyId: k.KeyId })).KeyMetadata;
      } catch (e) {
        if (e instanceof AwsError && e.code === "AccessDeniedException") return null;
        throw e;
      }
    }));
    const visible = described.filter((m) => m !== null);
    const hidden = described.length - visible.length;
    const tagsOf = new Map<string, { TagKey: string; TagValue: string }[]>();
    if (filters.tag.trim()) {
      await Promise.all(visible.map(async (m: any) => {
        const t = await kms("ListResourceTags", { KeyId: m.KeyId }).catch(() => ({ Tags: [] }));
        tagsOf.set(m.KeyId, t.Tags ?? []);
      }));
    }
    if (list.dataset.generation !== generation) return;
    const aliasNames = (keyId: string) =>
      (aliases ?? []).filter((a: any) => a.TargetKeyId === keyId).map((a: any) => a.AliasName);
    const shown = visible.filter((m: any) => matches(m, aliasNames(m.KeyId), tagsOf.get(m.KeyId)));
    const rows = shown.map((m: any) => [
      keyLink(region(), m.KeyId),
      aliasNames(m.KeyId).join(", "),
      m.Description ?? "",
      m.KeyState,
      m.KeySpec,
      m.KeyUsage,
      when(m.CreationDate),
    ]);
    if (page.NextMarker) markers[pageIndex + 1] = page.NextMarker;
    const nav = h("nav", { class: "pager", "aria-label": "Pages of keys" },
      h("button", { type: "button", id: "previous-page", disabled: pageIndex === 0, onclick: () => { pageIndex--; load(list); } }, "Previous page"),
      h("span", { id: "page-number" }, ` Page ${pageIndex + 1} `),
      h("button", { type: "button", id: "next-page", disabled: !page.Truncated, onclick: () => { pageIndex++; load(list); } }, "Next page"));
    list.replaceChildren(
      table(`Keys in ${region()}`, ["Key ID", "Aliases", "Description", "State", "Spec", "Usage", "Created"], rows),
      hidden ? h("p", { class: "note", id: "hidden-keys" },
        `${hidden} ${hidden === 1 ? "key" : "keys"} of this page not shown: DescribeKey was refused.`) : "",
      aliases === null ? h("p", { class: "note" }, "Aliases not shown: ListAliases was refused.") : "",
      nav);
    if (focusedId === "next-page" || focusedId === "previous-page") {
      const same = document.getElementById(focusedId) as HTMLButtonElement | null;
      const other = document.getElementById(focusedId === "next-page" ? "previous-page" : "next-page") as HTMLButtonElement | null;
      (same && !same.disabled ? same : other)?.focus();
    }
    status(`${shown.length} keys shown.`);
  } catch (e) {
    if (list.dataset.generation === generation) list.replaceChildren(errorBox(e));
  } finally {
    list.setAttribute("aria-busy", "false");
  }
}

function matches(m: any, aliases: string[], tags?: { TagKey: string; TagValue: string }[]): boolean {
  const text = filters.text.trim().toLowerCase();
  if (text && ![m.KeyId, m.Description ?? "", ...aliases].some((s) => s.toLowerCase().includes(text))) return false;
  if (filters.state && m.KeyState !== filters.state) return false;
  if (filters.spec && m.KeySpec !== filters.spec) return false;
  const tag = filters.tag.trim();
  if (tag) {
    const [k, v] = tag.split("=", 2);
    if (!(tags ?? []).some((t) => t.TagKey === k && (v === undefined || t.TagValue === v))) return false;
  }
  return true;
}

async function allAliases(): Promise<any[]> {
  const out: any[] = [];
  let marker: string | undefined;
  for (let i = 0; i < 20; i++) {
    const page = await kms("ListAliases", { Limit: 100, ...(marker ? { Marker: marker } : {}) });
    out.push(...(page.Aliases ?? []));
    if (!page.Truncated) break;
    marker = page.NextMarker;
  }
  return out;
}

/** Create a key: description, spec and usage; the answer's key opens. */
function createKeyForm(list: HTMLElement): HTMLElement {
  const description = h("input", { id: "new-key-description", type: "text" });
  const spec = h("select", { id: "new-key-spec" },
    ...["SYMMETRIC_DEFAULT", "RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_SECG_P256K1",
      "ECC_NIST_EDWARDS25519", "HMAC_256", "HMAC_512", "ML_DSA_65"].map((s) => h("option", { value: s }, s)));
  const usage = h("select", { id: "new-key-usage" },
    ...["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"].map((s) => h("option", { value: s }, s)));
  return h("section", { "aria-labelledby": "create-key-h" },
    h("h2", { id: "create-key-h" }, "Create a key"),
    h("div", { class: "toolbar" },
      h("label", { for: "new-key-description" }, "Description", description),
      h("label", { for: "new-key-spec" }, "Key spec", spec),
      h("label", { for: "new-key-usage" }, "Key usage", usage),
      action("Create key", async () => {
        const made = await kms("CreateKey", {
          Description: description.value,
          KeySpec: spec.value,
          KeyUsage: usage.value,
        });
        load(list);
        location.hash = `#/key/${encodeURIComponent(region())}/${encodeURIComponent(made.KeyMetadata.KeyId)}`;
        return `Created ${made.KeyMetadata.KeyId}.`;
      }, { id: "create-key" })));
}
