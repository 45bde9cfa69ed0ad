// What the console's browser scenarios share: their environment, Debian's Chromium launched by
// playwright-core, screenshots, waiting for a page to settle, keyboard helpers, and signing in
// and out (with the check that signing out leaves nothing of the credentials behind).

import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { mkdirSync } from "node:fs";

/** A variable the Rust side set; throws when it is missing. */
export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};

/** Launch Chromium at 1280x800 and open a page that records script errors. */
export async function open() {
  const require = createRequire(`${env("CONSOLE_NODE_MODULES")}/`);
  const { chromium } = require("playwright-core");
  mkdirSync(env("SCREENSHOTS"), { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.setDefaultTimeout(20000);
  return { browser, context, page, pageErrors };
}

/** Helpers bound to one page. */
export function helpers(page, context) {
  const shots = env("SCREENSHOTS");
  const shot = async (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  const settled = async (selector) => {
    await page.waitForSelector(selector);
    await page.waitForFunction(() => !document.querySelector("[aria-busy=true]"));
  };
  const text = async (selector) => (await page.textContent(selector)) ?? "";

  /** What the focused element is, in words a test can compare: its id, else its label. */
  const focused = () => page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return "";
    return el.id || el.getAttribute("aria-label") || `${el.tagName.toLowerCase()}:${(el.textContent ?? "").trim().slice(0, 60)}`;
  });

  /** Press Tab until the element matching `selector` has focus; fails after `limit` presses. */
  const tabTo = async (selector, limit = 200) => {
    for (let i = 0; i < limit; i++) {
      if (await page.evaluate((s) => document.activeElement?.matches(s) ?? false, selector)) return;
      await page.keyboard.press("Tab");
    }
    assert.fail(`${selector} is not reachable with Tab in ${limit} presses`);
  };

  /**
   * Tab once around the whole page from the top and return what took focus, in order. Stops when
   * focus comes back to the first element (or after `limit` presses).
   */
  const tabCycle = async (limit = 400) => {
    await page.evaluate(() => { document.activeElement?.blur?.(); window.scrollTo(0, 0); });
    const seen = [];
    for (let i = 0; i < limit; i++) {
      await page.keyboard.press("Tab");
      const now = await focused();
      // Focus on no element: Tab left the page for the browser's own controls; the next comes back.
      if (!now) continue;
      if (seen.length && now === seen[0]) return seen;
      seen.push(now);
    }
    return seen;
  };

  /** Everything in the page a user can act on, as `focused` names it. */
  const actionable = () => page.evaluate(() => {
    const all = document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex='0']");
    return [...all]
      // checkVisibility: not hidden, not display:none, not inside a closed <details>.
      .filter((el) => !el.disabled && el.checkVisibility())
      .map((el) => el.id || el.getAttribute("aria-label") || `${el.tagName.toLowerCase()}:${(el.textContent ?? "").trim().slice(0, 60)}`);
  });

  /** Sign in with the keyboard only: type, Tab, type, Enter. */
  const signIn = async (who) => {
    await page.waitForSelector("#access-key-id");
    await page.focus("#access-key-id");
    await page.keyboard.type(who.ak);
    await page.keyboard.press("Tab");
    await page.keyboard.type(who.sk);
    await page.keyboard.press("Enter");
    await settled("#key-list table, #key-list .empty, #key-list .error");
  };

  /** Sign out and check that nothing of the credentials is left in the page or the browser. */
  const signOutAndCheck = async (who) => {
    await page.click("#signout");
    await page.waitForSelector("#access-key-id");
    const left = await page.evaluate(() => ({
      local: localStorage.length,
      session: sessionStorage.length,
      cookie: document.cookie,
      nav: document.getElementById("nav")?.hidden,
      who: document.getElementById("who")?.textContent,
    }));
    assert.deepEqual(left, { local: 0, session: 0, cookie: "", nav: true, who: "" });
    assert.equal((await context.cookies()).length, 0, "no cookie");
    const html = await page.content();
    assert.ok(!html.includes(who.sk) && !html.includes(who.ak), "the page keeps no credential");
    // Without a session every route is the sign-in page.
    await page.goto(`${env("TRENT_URL")}/console/#/keys`);
    await page.waitForSelector("#access-key-id");
  };

  return { shot, settled, text, focused, tabTo, tabCycle, actionable, signIn, signOutAndCheck };
}
