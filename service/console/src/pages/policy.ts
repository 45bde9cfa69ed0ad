// Editing a key policy: the current text in an editor, a "what changes" view from the policy
// simulator (who gains and who loses each action, for every principal the deployment knows,
// and whether you would lock yourself out), then PutKeyPolicy with AWS's lockout check.

import { kms, setRegion, simulateKeyPolicyChange } from "../aws";
import { errorBox, h, highlightedJson, status, table } from "../ui";
import { keyPath } from "./key";

/** The policy page of a key. */
export function policyPage(keyRegion: string, keyId: string): HTMLElement {
  setRegion(keyRegion);
  const editor = h("textarea", { id: "policy-editor", rows: "24", spellcheck: "false", "aria-describedby": "policy-help" });
  const changes = h("div", { id: "policy-changes", "aria-live": "polite" });
  const saved = h("div", { id: "policy-saved", "aria-live": "polite" });
  const preview = h("button", { type: "button", id: "preview-policy" }, "Show what changes");
  const save = h("button", { type: "button", id: "save-policy" }, "Save policy");
  const bypass = h("input", { id: "bypass-lockout", type: "checkbox" });
  const page = h("div", { "data-title": `Policy of ${keyId}` },
    h("p", {}, h("a", { href: keyPath(keyRegion, keyId) }, "← Key")),
    h("h1", {}, `Key policy of ${keyId}`),
    h("p", { id: "policy-help" }, "Edit the JSON, then show what changes before you save: the simulator ",
      "compares every known principal's access under the current and the edited policy, with the ",
      "same evaluation live calls use."),
    h("label", { for: "policy-editor" }, "Policy document"),
    editor,
    h("p", {}, preview, " ", save, " ",
      h("label", { for: "bypass-lockout" }, bypass, " Bypass the lockout safety check")),
    changes,
    saved);
  editor.value = "Loading…";
  editor.disabled = true;
  editor.setAttribute("aria-busy", "true");
  kms("GetKeyPolicy", { KeyId: keyId, PolicyName: "default" }).then(
    (p) => { editor.value = JSON.stringify(JSON.parse(p.Policy), null, 2); editor.disabled = false; },
    (e) => { editor.value = ""; changes.replaceChildren(errorBox(e)); },
  ).finally(() => editor.setAttribute("aria-busy", "false"));
  preview.addEventListener("click", async () => {
    preview.disabled = true;
    changes.setAttribute("aria-busy", "true");
    changes.replaceChildren(h("p", { class: "loading" }, "Simulating…"));
    try {
      const answer = await simulateKeyPolicyChange(keyId, editor.value);
      changes.replaceChildren(changeView(answer));
      status(`${answer.Changes.length} changes.`);
    } catch (e) {
      changes.replaceChildren(errorBox(e));
    } finally {
      preview.disabled = false;
      changes.setAttribute("aria-busy", "false");
    }
  });
  save.addEventListener("click", async () => {
    save.disabled = true;
    saved.setAttribute("aria-busy", "true");
    saved.replaceChildren(h("p", { class: "loading" }, "Saving…"));
    try {
      await kms("PutKeyPolicy", {
        KeyId: keyId,
        PolicyName: "default",
        Policy: editor.value,
        ...(bypass.checked ? { BypassPolicyLockoutSafetyCheck: true } : {}),
      });
      saved.replaceChildren(h("p", { class: "ok" }, "Policy saved."));
    } catch (e) {
      saved.replaceChildren(errorBox(e));
    } finally {
      save.disabled = false;
      saved.setAttribute("aria-busy", "false");
    }
  });
  return page;
}

/** The simulator's answer: gains and losses per principal and action, and the lockout warning. */
function changeView(answer: any): HTMLElement {
  const verdict = (d: string) => (d === "allowed" ? "allowed" : d === "explicitDeny" ? "denied (explicit)" : "denied");
  const rows = (answer.Changes ?? []).map((c: any) => [
    c.Principal,
    c.Action,
    c.After === "allowed" ? h("strong", { class: "gain" }, "gains") : h("strong", { class: "loss" }, "loses"),
    `${verdict(c.Before)} → ${verdict(c.After)}`,
    (c.DecidingStatements ?? []).join(", "),
  ]);
  return h("div", {},
    h("h2", {}, "What changes"),
    answer.CallerKeepsPutKeyPolicy ? "" : h("p", { class: "error", role: "alert" },
      h("strong", {}, "Lockout: "), "under this policy you could not change it again (PutKeyPolicy would refuse it unless you bypass the check)."),
    rows.length
      ? table("Who gains and who loses", ["Principal", "Action", "Change", "Decision", "Deciding statements"], rows)
      : h("p", { class: "empty" }, `No change for the ${answer.Principals?.length ?? 0} known principals and ${answer.Actions?.length ?? 0} actions.`),
    h("details", {}, h("summary", {}, "Principals and actions compared"),
      highlightedJson({ Principals: answer.Principals, Actions: answer.Actions }, "Principals and actions compared")));
}
