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

/** Render the page of the current location. */
export function route(): void {
  const main = document.getElementById("main");
  if (!main) return;
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  const out = document.getElementById("signout");
  nav?.toggleAttribute("hidden", !signedIn());
  out?.toggleAttribute("hidden", !signedIn());
  if (who) who.textContent = signedIn() ? `${callerArn()} (${region()})` : "";
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  let page: HTMLElement;
  if (!signedIn()) page = signInPage(() => { location.hash = "#/keys"; route(); });
  else if (parts[0] === "key" && parts[3] === "policy") page = policyPage(parts[1], parts[2]);
  else if (parts[0] === "key" && parts[3] === "usage") page = usagePage(parts[1], parts[2]);
  else if (parts[0] === "key" && parts[2]) page = keyPage(parts[1], parts[2]);
  else if (parts[0] === "audit") page = auditPage(new URLSearchParams(parts.slice(1).join("/")));
  else page = keysPage();
  status("");
  main.replaceChildren(page);
  document.title = `${page.dataset.title ?? "Console"} · Trent`;
  const heading = main.querySelector("h1");
  if (heading instanceof HTMLElement) {
    heading.tabIndex = -1;
    heading.focus();
  }
}

document.getElementById("signout")?.addEventListener("click", () => signOut());
window.addEventListener("hashchange", route);
route();
