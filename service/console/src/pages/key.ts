// One key: its metadata, the actions its owner takes (each an API call whose AWS error is shown
// as AWS wrote it), aliases, tags, rotation status and history, imported material, grants and
// its key policy. Every section loads on its own, so a refused call hides only its section.

import { kms, setRegion } from "../aws";
import { action, facts, h, highlightedJson, section, status, table, when } from "../ui";

/**
 * Render the current route again after an action changed the key; `message` says what was done
 * in the status line (the action's own result line goes away with the old page).
 */
export function refresh(message = ""): void {
  window.dispatchEvent(new HashChangeEvent("hashchange"));
  if (message) status(message);
}

/** A key's base path in the console. */
export function keyPath(keyRegion: string, keyId: string): string {
  return `#/key/${encodeURIComponent(keyRegion)}/${encodeURIComponent(keyId)}`;
}

/** The key page. */
export function keyPage(keyRegion: string, keyId: string): HTMLElement {
  setRegion(keyRegion);
  const described = kms("DescribeKey", { KeyId: keyId }).then((d) => d.KeyMetadata);
  const page = h("div", { "data-title": `Key ${keyId}` },
    h("p", {}, h("a", { href: "#/keys" }, "← All keys")),
    h("h1", {}, `Key ${keyId}`),
    h("p", { class: "links" },
      h("a", { href: `${keyPath(keyRegion, keyId)}/usage` }, "Usage of this key"), " · ",
      h("a", { href: `${keyPath(keyRegion, keyId)}/policy` }, "Edit key policy")),
    section("Metadata", async () => metadata(await described), "metadata"),
    section("Actions", async () => actions(await described), "actions"),
    section("Aliases", () => aliases(keyId), "aliases"),
    section("Tags", () => tags(keyId), "tags"),
    section("Rotation", async () => rotation(await described), "rotation"),
    section("Grants", () => grants(keyId), "grants"),
    section("Key policy", async () => {
      const p = await kms("GetKeyPolicy", { KeyId: keyId, PolicyName: "default" });
      return highlightedJson(p.Policy, "Key policy");
    }, "policy"));
  return page;
}

function metadata(m: any): HTMLElement {
  return facts([
    ["ARN", m.Arn],
    ["State", m.KeyState],
    ["Description", m.Description],
    ["Key spec", m.KeySpec],
    ["Key usage", m.KeyUsage],
    ["Origin", m.Origin],
    ["Key manager", m.KeyManager],
    ["Created", when(m.CreationDate)],
    ["Deletion date", when(m.DeletionDate)],
    ["Pending deletion window (days)", m.PendingDeletionWindowInDays ? String(m.PendingDeletionWindowInDays) : ""],
    ["Multi-Region", m.MultiRegion ? `yes (${m.MultiRegionConfiguration?.MultiRegionKeyType ?? ""})` : "no"],
    ["Imported material expires", m.Origin === "EXTERNAL" ? (m.ExpirationModel === "KEY_MATERIAL_DOES_NOT_EXPIRE" ? "never" : when(m.ValidTo) || "—") : ""],
    ["Current key material", m.CurrentKeyMaterialId],
    ["Custom key store", m.CustomKeyStoreId],
  ]);
}

function actions(m: any): HTMLElement {
  const id = m.KeyId;
  const done = (text: string) => async () => { refresh(text); return text; };
  const description = h("input", { id: "edit-description", type: "text", value: m.Description ?? "" });
  const days = h("input", { id: "deletion-days", type: "number", min: "7", max: "30", value: "30" });
  const enableDisable = m.KeyState === "Disabled"
    ? action("Enable key", async () => { await kms("EnableKey", { KeyId: id }); return done("Enabled.")(); }, { id: "enable-key" })
    : action("Disable key", async () => { await kms("DisableKey", { KeyId: id }); return done("Disabled.")(); }, { id: "disable-key" });
  const deletion = m.KeyState === "PendingDeletion" || m.KeyState === "PendingReplicaDeletion"
    ? action("Cancel deletion", async () => { await kms("CancelKeyDeletion", { KeyId: id }); return done("Deletion cancelled; the key is disabled.")(); }, { id: "cancel-deletion" })
    : h("span", {}, h("label", { for: "deletion-days" }, "Waiting period (days) ", days),
      action("Schedule deletion", async () => {
        const r = await kms("ScheduleKeyDeletion", { KeyId: id, PendingWindowInDays: Number(days.value) });
        const text = `Deletion scheduled for ${when(r.DeletionDate) || "after its replicas"}.`;
        refresh(text);
        return text;
      }, { id: "schedule-deletion" }));
  return h("div", { class: "actions" },
    h("p", {}, enableDisable),
    h("p", {}, deletion),
    h("p", {}, action("Rotate now", async () => { await kms("RotateKeyOnDemand", { KeyId: id }); return done("Rotation done.")(); }, { id: "rotate-now" })),
    h("p", {}, h("label", { for: "edit-description" }, "Description ", description),
      action("Save description", async () => {
        await kms("UpdateKeyDescription", { KeyId: id, Description: description.value });
        return done("Description saved.")();
      }, { id: "save-description" })));
}

async function aliases(keyId: string): Promise<HTMLElement> {
  const list = await kms("ListAliases", { KeyId: keyId });
  const name = h("input", { id: "new-alias", type: "text", value: "alias/" });
  return h("div", {},
    table("Aliases", ["Alias", ""], (list.Aliases ?? []).map((a: any) => [
      a.AliasName,
      action("Delete", async () => { await kms("DeleteAlias", { AliasName: a.AliasName }); refresh(`Alias ${a.AliasName} deleted.`); }, { "aria-label": `Delete alias ${a.AliasName}` }),
    ])),
    h("p", {}, h("label", { for: "new-alias" }, "New alias ", name),
      action("Create alias", async () => {
        await kms("CreateAlias", { AliasName: name.value, TargetKeyId: keyId });
        refresh(`Alias ${name.value} created.`);
      }, { id: "create-alias" })));
}

async function tags(keyId: string): Promise<HTMLElement> {
  const list = await kms("ListResourceTags", { KeyId: keyId });
  const tagKey = h("input", { id: "tag-key", type: "text" });
  const tagValue = h("input", { id: "tag-value", type: "text" });
  return h("div", {},
    table("Tags", ["Key", "Value", ""], (list.Tags ?? []).map((t: any) => [
      t.TagKey, t.TagValue,
      action("Remove", async () => { await kms("UntagResource", { KeyId: keyId, TagKeys: [t.TagKey] }); refresh(`Tag ${t.TagKey} removed.`); }, { "aria-label": `Remove tag ${t.TagKey}` }),
    ])),
    h("p", {}, h("label", { for: "tag-key" }, "Tag key ", tagKey), " ",
      h("label", { for: "tag-value" }, "Tag value ", tagValue),
      action("Add tag", async () => {
        await kms("TagResource", { KeyId: keyId, Tags: [{ TagKey: tagKey.value, TagValue: tagValue.value }] });
        refresh(`Tag ${tagKey.value} added.`);
      }, { id: "add-tag" })));
}

async function rotation(m: any): Promise<HTMLElement> {
  if (m.KeySpec !== "SYMMETRIC_DEFAULT" && !m.KeySpec?.startsWith("HMAC")) {
    return h("p", { class: "empty" }, `Keys of spec ${m.KeySpec} do not rotate.`);
  }
  const [statusOf, history] = await Promise.all([
    kms("GetKeyRotationStatus", { KeyId: m.KeyId }),
    kms("ListKeyRotations", { KeyId: m.KeyId, IncludeKeyMaterial: "ALL_KEY_MATERIAL" }).catch(() =>
      kms("ListKeyRotations", { KeyId: m.KeyId })),
  ]);
  const period = h("input", { id: "rotation-days", type: "number", min: "90", max: "2560", value: String(statusOf.RotationPeriodInDays ?? 365) });
  return h("div", {},
    facts([
      ["Automatic rotation", statusOf.KeyRotationEnabled ? "enabled" : "disabled"],
      ["Rotation period (days)", statusOf.RotationPeriodInDays ? String(statusOf.RotationPeriodInDays) : ""],
      ["Next rotation", when(statusOf.NextRotationDate)],
    ]),
    h("p", {}, statusOf.KeyRotationEnabled
      ? action("Disable automatic rotation", async () => { await kms("DisableKeyRotation", { KeyId: m.KeyId }); refresh("Automatic rotation disabled."); }, { id: "disable-rotation" })
      : h("span", {}, h("label", { for: "rotation-days" }, "Period (days) ", period),
        action("Enable automatic rotation", async () => {
          await kms("EnableKeyRotation", { KeyId: m.KeyId, RotationPeriodInDays: Number(period.value) });
          refresh("Automatic rotation enabled.");
        }, { id: "enable-rotation" }))),
    table("Rotations", ["Date", "Type", "Key material", "State", "Expires"], (history.Rotations ?? []).map((r: any) => [
      when(r.RotationDate), r.RotationType ?? "", r.KeyMaterialId ?? "", r.KeyMaterialState ?? "", when(r.ValidTo),
    ])));
}

async function grants(keyId: string): Promise<HTMLElement> {
  const list = await kms("ListGrants", { KeyId: keyId });
  return table("Grants", ["Name", "Grantee", "Operations", "Retiring principal", "Created"],
    (list.Grants ?? []).map((g: any) => [
      g.Name ?? g.GrantId,
      g.GranteePrincipal ?? g.GranteeServicePrincipal ?? "",
      (g.Operations ?? []).join(", "),
      g.RetiringPrincipal ?? g.RetiringServicePrincipal ?? "",
      when(g.CreationDate),
    ]));
}
