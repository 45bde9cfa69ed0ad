// Sign-in: the user's own access key (and session token, for STS credentials), checked with STS
// GetCallerIdentity and then held only in the tab's memory.

import { signIn } from "../aws";
import { errorBox, h, status } from "../ui";

/** The Regions the selector offers (any Region the server answers for can be typed). */
export const REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"];

/** The sign-in page; `done` runs once the credentials are accepted. */
export function signInPage(done: () => void): HTMLElement {
  const out = h("div", { "aria-live": "assertive" });
  const field = (label: string, name: string, type = "text", required = true) =>
    h("p", {}, h("label", { for: name }, label),
      h("input", { id: name, name, type, required, autocomplete: "off", spellcheck: "false" }));
  const regionInput = h("input", { id: "region", name: "region", list: "regions", value: "us-east-1", required: true });
  const form = h("form", { class: "signin", "aria-label": "Sign in" },
    field("Access key ID", "access-key-id"),
    field("Secret access key", "secret-access-key", "password"),
    field("Session token (only for temporary credentials)", "session-token", "password", false),
    h("p", {}, h("label", { for: "region" }, "Region"), regionInput,
      h("datalist", { id: "regions" }, ...REGIONS.map((r) => h("option", { value: r })))),
    h("p", {}, h("button", { type: "submit", id: "signin" }, "Sign in")),
    out);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const value = (id: string) => (form.querySelector(`#${id}`) as HTMLInputElement).value.trim();
    const button = form.querySelector("#signin") as HTMLButtonElement;
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    out.replaceChildren(h("p", { class: "loading" }, "Signing in…"));
    try {
      const token = value("session-token");
      const arn = await signIn({
        accessKeyId: value("access-key-id"),
        secretAccessKey: value("secret-access-key"),
        sessionToken: token || undefined,
      }, value("region"));
      form.reset();
      status(`Signed in as ${arn}.`);
      done();
    } catch (err) {
      out.replaceChildren(errorBox(err));
    } finally {
      button.disabled = false;
      form.setAttribute("aria-busy", "false");
    }
  });
  return h("div", { "data-title": "Sign in" },
    h("h1", {}, "Sign in to Trent"),
    h("p", {}, "Use your own access key. It stays in this tab's memory only: it is not stored, ",
      "and signing out or closing the tab forgets it. Every request the console makes is signed ",
      "with it and audited like any other call."),
    form);
}
