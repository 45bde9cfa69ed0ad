// The console from the keyboard, with slow calls, many keys and time windows, in Debian's
// Chromium against a real `trent serve` that tests/it/console.rs filled with $KEYS (more than one
// page) and $ENCRYPTS Encrypt calls on $KEY between $CALLS_FROM and $CALLS_TO (epoch seconds).
//
// Slow calls are made slow by holding the browser's request at a gate until the script has
// seen the loading state, so nothing here depends on timing. Every action after sign-in is
// driven by the keyboard (Tab, Enter, Space, typing). Prints one JSON line of facts.

import assert from "node:assert/strict";
import { env, helpers, open } from "./lib.mjs";

const url = env("TRENT_URL");
const region = "us-east-1";
const root = { ak: env("ROOT_AK"), sk: env("ROOT_SK") };
const keys = JSON.parse(env("KEYS"));
const key = env("KEY");
const encrypts = Number(env("ENCRYPTS"));
const callsFrom = Number(env("CALLS_FROM"));
const callsTo = Number(env("CALLS_TO"));

const { browser, context, page, pageErrors } = await open();
const { shot, settled, text, focused, tabTo, tabCycle, actionable, signOutAndCheck } = helpers(page, context);
const facts = {};

// The gate: a request the predicate matches waits until the script lets it go.
let gate = null;
/** Hold the next request whose target (X-Amz-Target, or STS's Action) ends with `operation`. */
function hold(operation) {
  let arrived, release;
  const seen = new Promise((r) => { arrived = r; });
  const open = new Promise((r) => { release = r; });
  const mine = { operation, arrived, open };
  gate = mine;
  // Releasing clears the gate only if no later hold replaced it.
  return { seen: within(seen, `${operation} to reach the browser's network`), release: () => { if (gate === mine) gate = null; release(); } };
}
/** `promise`, or a failure naming `what` after 20 s: a call that never comes must not hang the suite. */
function within(promise, what) {
  let timer;
  const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 20000); });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
await page.route(`${url}/`, async (route) => {
  const request = route.request();
  const target = request.headers()["x-amz-target"] ?? (request.postData() ?? "").replace(/^Action=([A-Za-z]+).*/, "$1");
  const waiting = gate;
  if (waiting && target.endsWith(waiting.operation)) {
    waiting.arrived();
    await waiting.open;
  }
  await route.continue();
});
/** Fail the next request for `operation` as a broken network would. */
async function breakNext(operation) {
  const matcher = async (route) => {
    const target = route.request().headers()["x-amz-target"] ?? "";
    if (target.endsWith(operation)) {
      await page.unroute(`${url}/`, matcher);
      await route.abort("connectionreset");
    } else {
      await route.fallback();
    }
  };
  await page.route(`${url}/`, matcher);
}
const busy = (selector) => page.$eval(selector, (el) => el.closest("[aria-busy]")?.getAttribute("aria-busy"));
/** Actions the page offers that Tab never reaches. */
async function unreachable() {
  const order = await tabCycle();
  const cycle = new Set(order);
  const all = await actionable();
  const missing = all.filter((a) => !cycle.has(a));
  if (missing.length) console.error("Tab reached, in order:", JSON.stringify(order));
  return { missing, count: all.length };
}
const datetime = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 19);

// On a fresh load the skip link is the first stop; it moves focus to the content without leaving the page.
await page.goto(`${url}/console/`);
await page.waitForSelector("#access-key-id");
await page.keyboard.press("Tab");
assert.equal(await focused(), "a:Skip to content");
await page.keyboard.press("Enter");
assert.equal(await focused(), "main");
assert.ok(await page.isVisible("#access-key-id"), "still the sign-in page");

// Signing in is slow: the form says so and cannot be sent twice.
let held = hold("GetCallerIdentity");
await tabTo("#access-key-id");
await page.keyboard.type(root.ak);
await page.keyboard.press("Tab");
await page.keyboard.type(root.sk);
await page.keyboard.press("Enter");
await held.seen;
assert.match(await text("form.signin"), /Signing in…/);
assert.equal(await page.getAttribute("form.signin", "aria-busy"), "true");
assert.ok(await page.isDisabled("#signin"), "sign-in is disabled while it runs");
await shot("11-signing-in");

// The keys page loads slowly too: "Loading keys…" until ListKeys answers.
const listing = hold("ListKeys");
held.release();
await listing.seen;
await page.waitForSelector("#key-list .loading");
assert.match(await text("#key-list"), /Loading keys…/);
assert.equal(await page.getAttribute("#key-list", "aria-busy"), "true");
await shot("12-loading-keys");
listing.release();
await settled("#key-list table");

// The skip link after sign-in: focus goes to the content, the route stays.
await tabTo("a.skip");
await page.keyboard.press("Enter");
assert.equal(await focused(), "main");
assert.match(page.url(), /#\/keys$/);

// More keys than a page: 20, then the rest, reached with the pager from the keyboard.
const rowsOf = () => page.$$eval("#key-list tbody tr td:first-child", (tds) => tds.map((td) => td.textContent.trim()));
const first = await rowsOf();
assert.equal(first.length, 20, "a page holds 20 keys");
assert.match(await text("#page-number"), /Page 1/);
assert.ok(await page.isDisabled("#previous-page"));
await tabTo("#next-page");
await page.keyboard.press("Enter");
await page.waitForFunction(() => document.querySelector("#page-number")?.textContent?.includes("Page 2"));
await settled("#key-list table");
const second = await rowsOf();
assert.equal(second.length, keys.length - 20, "the second page holds the rest");
assert.ok(await page.isDisabled("#next-page"), "no page after the last");
assert.equal(await focused(), "previous-page", "focus stays on the pager");
await shot("13-keys-page-2");
assert.deepEqual([...first, ...second].sort(), [...keys].sort(), "every key once, across the pages");
await page.keyboard.press("Space");
await page.waitForFunction(() => document.querySelector("#page-number")?.textContent?.includes("Page 1"));
await settled("#key-list table");
assert.deepEqual(await rowsOf(), first, "Previous shows the first page again");
facts.keysPage = await unreachable();
assert.deepEqual(facts.keysPage.missing, [], "every action of the keys page is reachable with Tab");

// A key's page: each section says it is loading until its own call answers.
const describing = hold("DescribeKey");
await page.goto(`${url}/console/#/key/${region}/${key}`);
await describing.seen;
await settled("#aliases .section-body table, #aliases .section-body .empty").catch(() => {});
for (const section of ["metadata", "actions", "rotation"]) {
  assert.match(await text(`#${section} .section-body`), /Loading…/, `${section} is loading`);
  assert.equal(await busy(`#${section} .section-body`), "true");
}
assert.doesNotMatch(await text("#aliases"), /Loading…/, "aliases did not wait for DescribeKey");
await shot("14-loading-key");
describing.release();
await settled("#metadata dl");
facts.keyPage = await unreachable();
assert.deepEqual(facts.keyPage.missing, [], "every action of the key page is reachable with Tab");
assert.ok(facts.keyPage.count >= 15, `the key page offers its actions (${facts.keyPage.count})`);

// Focus is visible: a thick outline, not colour alone.
await tabTo("#disable-key");
const outline = await page.$eval("#disable-key", (el) => getComputedStyle(el).outlineStyle + " " + getComputedStyle(el).outlineWidth);
assert.equal(outline, "solid 3px");

// Disable from the keyboard, slowly: the button is disabled and says it is working.
const disabling = hold("DisableKey");
await page.keyboard.press("Enter");
await disabling.seen;
assert.ok(await page.isDisabled("#disable-key"));
assert.match(await text("#actions .result"), /Working…/);
assert.equal(await page.getAttribute("#actions .result", "aria-busy"), "true");
await shot("15-working");
disabling.release();
await page.waitForFunction(() => document.querySelector("#metadata dl")?.textContent?.includes("Disabled"));
assert.match(await text("#status"), /Disabled\./, "the status line says what was done");
await page.waitForFunction(() => document.activeElement?.id === "actions-h", null, { timeout: 5000 });
// ... and enable it again with Space.
await tabTo("#enable-key");
await page.keyboard.press("Space");
await page.waitForFunction(() => document.querySelector("#metadata dl")?.textContent?.includes("Enabled"));

// Description and a tag, typed.
await tabTo("#edit-description");
await page.keyboard.press("Control+A");
await page.keyboard.type("typed on a keyboard");
await page.keyboard.press("Tab");
assert.equal(await focused(), "save-description");
await page.keyboard.press("Enter");
await page.waitForFunction(() => document.querySelector("#metadata dl")?.textContent?.includes("typed on a keyboard"));
await settled("#tag-key");
await tabTo("#tag-key");
await page.keyboard.type("owner");
await page.keyboard.press("Tab");
await page.keyboard.type("keyboard");
await page.keyboard.press("Tab");
assert.equal(await focused(), "add-tag");
await page.keyboard.press("Enter");
await page.waitForFunction(() => document.querySelector("#tags table")?.textContent?.includes("keyboard"));
assert.equal(await focused(), "add-tag", "focus stays where the user was");

// A call that fails on the network shows its error in its own section; the others load.
await breakNext("ListResourceTags");
await page.reload();
await page.waitForSelector("#access-key-id");
// (A reload forgets the session by design: sign in again.)
await tabTo("#access-key-id");
await page.keyboard.type(root.ak);
await page.keyboard.press("Tab");
await page.keyboard.type(root.sk);
await page.keyboard.press("Enter");
await page.waitForSelector("#tags .error");
await settled("#metadata dl");
assert.match(await text("#tags .error"), /NetworkError: The server did not answer/);
assert.match(await text("#metadata"), /Enabled/);
await shot("16-section-error");

// The policy page: the editor is busy until the policy arrives; the simulation is slow too.
const reading = hold("GetKeyPolicy");
await page.goto(`${url}/console/#/key/${region}/${key}/policy`);
await reading.seen;
assert.ok(await page.isDisabled("#policy-editor"));
assert.equal(await page.getAttribute("#policy-editor", "aria-busy"), "true");
reading.release();
await page.waitForFunction(() => !document.querySelector("#policy-editor")?.disabled);
const simulating = hold("SimulateKeyPolicyChange");
await tabTo("#preview-policy");
await page.keyboard.press("Enter");
await simulating.seen;
assert.match(await text("#policy-changes"), /Simulating…/);
assert.ok(await page.isDisabled("#preview-policy"));
simulating.release();
await page.waitForSelector("#policy-changes .empty");
assert.match(await text("#policy-changes"), /No change for the \d+ known principals/);
facts.policyPage = await unreachable();
assert.deepEqual(facts.policyPage.missing, [], "every action of the policy page is reachable with Tab");

// The audit page, from the header's navigation: a time window around the calls finds them all.
await tabTo('#nav a[href="#/audit"]');
await page.keyboard.press("Enter");
await page.waitForSelector("#audit-attribute");
assert.equal(await page.evaluate(() => document.activeElement?.tagName), "H1", "a new page focuses its heading");
await tabTo("#audit-attribute");
await page.selectOption("#audit-attribute", "EventName");
await tabTo("#audit-value");
await page.keyboard.type("Encrypt");
await tabTo("#audit-start");
await page.fill("#audit-start", datetime(callsFrom));
await page.fill("#audit-end", datetime(callsTo));
const searching = hold("LookupEvents");
await tabTo("#audit-search");
await page.keyboard.press("Enter");
await searching.seen;
assert.match(await text("#audit-results"), /Searching…/);
assert.equal(await page.getAttribute("#audit-results", "aria-busy"), "true");
searching.release();
await settled("#audit-results table");
const found = await page.$$eval("#audit-results tbody tr", (trs) => trs.map((tr) => tr.textContent));
assert.equal(found.length, encrypts, `the window holds the ${encrypts} Encrypt calls: ${JSON.stringify(found)}`);
assert.ok(found.every((r) => r.includes("Encrypt")));
await shot("17-audit-window");
// The record opens from the keyboard.
await tabTo("#audit-results .show-record");
await page.keyboard.press("Enter");
await page.waitForSelector("#audit-detail pre");
const record = JSON.parse(await text("#audit-detail pre"));
assert.equal(record.eventName, "Encrypt");
const at = Date.parse(record.eventTime) / 1000;
assert.ok(at >= callsFrom && at <= callsTo, `${record.eventTime} is in the window`);
facts.auditPage = await unreachable();
assert.deepEqual(facts.auditPage.missing, [], "every action of the audit page is reachable with Tab");
// A window that ends before the calls finds none of them.
await page.fill("#audit-start", datetime(callsFrom - 3600));
await page.fill("#audit-end", datetime(callsFrom - 60));
await page.click("#audit-search");
await settled("#audit-results .empty");
assert.match(await text("#audit-results"), /Events \(0 of 0 found\): none\./);
// A window that starts after them, neither.
await page.fill("#audit-start", datetime(callsTo + 60));
await page.fill("#audit-end", datetime(callsTo + 3600));
await page.click("#audit-search");
await settled("#audit-results .empty");
assert.match(await text("#audit-results"), /Events \(0 of 0 found\): none\./);

// The usage page reads the trail slowly: it says so.
const usage = hold("LookupEvents");
await page.goto(`${url}/console/#/key/${region}/${key}/usage`);
await usage.seen;
assert.match(await text("#usage-results"), /Reading the trail…/);
usage.release();
await settled("#usage-results figure.chart");
assert.match(await text("#usage-results"), new RegExp(`${encrypts} calls on this key|Encrypt`));
facts.usagePage = await unreachable();
assert.deepEqual(facts.usagePage.missing, [], "every action of the usage page is reachable with Tab");

// Phone width: the key page and the audit page fit without sideways scrolling.
await page.setViewportSize({ width: 390, height: 844 });
for (const [route, ready, name] of [[`#/key/${region}/${key}`, "#metadata dl", "18-key-phone"], ["#/audit", "#audit-search", "19-audit-phone"]]) {
  await page.goto(`${url}/console/${route}`);
  await settled(ready);
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(over <= 0, `${route}: no sideways scrolling at phone width (${over}px over)`);
  await shot(name);
}
await page.setViewportSize({ width: 1280, height: 800 });

// Sign out from the keyboard; nothing of the credentials stays.
await page.goto(`${url}/console/#/keys`);
await settled("#key-list table");
await signOutAndCheck(root);
assert.deepEqual(pageErrors, [], "no script error in the page");
await browser.close();
console.log(JSON.stringify(facts));
