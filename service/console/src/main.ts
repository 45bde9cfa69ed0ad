// The console's entry: a hash router over the pages. Every page renders into <main>; the
// header shows who is signed in and the sign-out button. Without a session every route shows
// the sign-in page.

import { callerArn, region, signedIn, signOut } from "./aws";
import { signInPage } from "./pages/signin";
import { keysPage } from "./pages/keys";
import { keyPage } from "./pages/key";
import { policyPage } from "./pages/policy";
import { auditPage } from "./pages/audit";
import { usagePage } from "./pages/usage";
import { status } from "./ui";

/** The location last rendered: rendering it again is a refresh after an action. */
let rendered: string | null = null;
/** Where focus was last inside the page's content, so a refresh can put it back. */
let lastFocus: { id: string; section: string } | null = null;
document.addEventListener("focusin", (e) => {
  const main = document.getElementById("main");
  const target = e.target;
  lastFocus = main && target instanceof HTMLElement && target !== main && main.contains(target)
    ? { id: target.id, section: target.closest("section")?.id ?? "" }
    : null;
});
/** Whether a page was rendered yet: the first one leaves focus at the top, on the skip link's way. */
let loaded = false;

/** Render the page of the current location. */
export function route(): void {
  const main = document.getElementById("main");
  if (!main) return;
  // A refresh keeps the keyboard user's place: the control focused last, or else its section.
  // (Not document.activeElement: a button that is disabled while its call runs loses focus.)
  const keep = rendered === location.hash ? lastFocus : null;
  rendered = signedIn() ? location.hash : null;
  lastFocus = null;
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const out = document.getElementById("signout");
  nav?.toggleAttribute("hidden", !signedIn());
  out?.toggleAttribute("hidden", !signedIn());
  if (who) who.textContent = signedIn() ? `${callerArn()} (${region()})` : "";
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let page: HTMLElement;
  // After sign-in the user lands where they were going (a deep link, a reloaded page), else keys.
  if (!signedIn()) page = signInPage(() => { if (!parts[0]) location.hash = "#/keys"; route(); });
  else if (parts[0] === "key" && parts[3] === "policy") page = policyPage(parts[1], parts[2]);
  else if (parts[0] === "key" && parts[3] === "usage") page = usagePage(parts[1], parts[2]);
  else if (parts[0] === "key" && parts[2]) page = keyPage(parts[1], parts[2]);
  else if (parts[0] === "audit") page = auditPage(new URLSearchParams(parts.slice(1).join("/")));
  else page = keysPage();
  status("");
  main.replaceChildren(page);
  document.title = `${page.dataset.title ?? "Console"} · Trent`;
  if (keep) {
    refocus(main, keep);
    return;
  }
  const heading = main.querySelector("h1");
  if (!loaded) {
    loaded = true;
    return;
  }
  if (heading instanceof HTMLElement) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

/**
 * Focus the control with `keep.id` once the page rendered again shows it, or the heading of its
 * section when the section loaded without it (Disable key becomes Enable key).
 */
function refocus(main: HTMLElement, keep: { id: string; section: string }): void {
  const attempt = (): boolean => {
    const el = keep.id ? document.getElementById(keep.id) : null;
    if (el instanceof HTMLElement && !(el as HTMLButtonElement).disabled) {
      el.focus();
      return true;
    }
    const section = keep.section ? document.getElementById(keep.section) : null;
    if (section?.querySelector(".section-body[aria-busy=false]")) {
      const heading = section.querySelector("h2");
      if (heading instanceof HTMLElement) {
        heading.tabIndex = -1;
        heading.focus();
      }
      return true;
    }
    return false;
  };
  if (attempt()) return;
  const observer = new MutationObserver(() => {
    if (attempt()) observer.disconnect();
  });
  observer.observe(main, { subtree: true, childList: true, attributes: true, attributeFilter: ["aria-busy"] });
  setTimeout(() => observer.disconnect(), 10000);
}

document.getElementById("signout")?.addEventListener("click", () => signOut());
// The skip link moves focus to the page's content; it must not change the hash, which routes.
document.querySelector("a.skip")?.addEventListener("click", (e) => {
  e.preventDefault();
  document.getElementById("main")?.focus();
});
window.addEventListener("hashchange", route);
route();
