// The console in a real browser (Debian's Chromium, driven by playwright-core) against a real
// `trent serve` that tests/it/console.rs started and filled. Every step asserts what a user sees;
// a screenshot of each page goes to $SCREENSHOTS. Prints one JSON line of facts for the Rust
// side, which checks the server's state and the audit trail afterwards. Exits non-zero on the
// first failed assertion.

import assert from "node:assert/strict";
import { env, helpers, open } from "./lib.mjs";

const url = env("TRENT_URL");
const region = "us-east-1";
const root = { ak: env("ROOT_AK"), sk: env("ROOT_SK") };
const alice = { ak: env("ALICE_AK"), sk: env("ALICE_SK") };
const visibleKey = env("KEY_VISIBLE");
const hiddenKey = env("KEY_HIDDEN");
const encryptRequestId = env("ENCRYPT_REQUEST_ID");
const bobArn = env("BOB_ARN");

const { browser, context, page, pageErrors } = await open();
const { shot, settled, text, signIn, signOutAndCheck } = helpers(page, context);
const facts = {};

await page.goto(`${url}/console/`);
await page.waitForSelector("#access-key-id");
await shot("01-sign-in");

// A wrong secret is refused with STS's error, as AWS writes it.
await page.fill("#access-key-id", alice.ak);
await page.fill("#secret-access-key", "not-the-secret-at-all");
await page.click("button[type=submit]");
await page.waitForSelector("form.signin .error");
assert.match(await text("form.signin .error"), /SignatureDoesNotMatch/);
await page.fill("#access-key-id", "");
await page.fill("#secret-access-key", "");

// Alice sees only the keys her policies let her describe.
await signIn(alice);
const aliceList = await text("#key-list");
assert.ok(aliceList.includes(visibleKey), `alice sees ${visibleKey}`);
assert.ok(!aliceList.includes(hiddenKey), `alice does not see ${hiddenKey}`);
assert.match(await text("#hidden-keys"), /1 key of this page not shown: DescribeKey was refused/);
assert.match(await text("#who"), /user\/alice/);
await shot("02-keys-as-alice");
await signOutAndCheck(alice);

// Root creates a key, tags it, schedules its deletion and cancels it.
await signIn(root);
await shot("03-keys-as-root");
await page.fill("#new-key-description", "made in the console");
await page.click("#create-key");
await page.waitForURL(/#\/key\//);
await settled("#metadata dl");
const created = decodeURIComponent(page.url().split("/").pop());
facts.createdKey = created;
assert.match(await text("#metadata"), /Enabled/);
assert.match(await text("#metadata"), /made in the console/);

await page.fill("#tag-key", "team");
await page.fill("#tag-value", "payments");
await page.click("#add-tag");
await page.waitForFunction(() => document.querySelector("#tags table")?.textContent?.includes("payments"));

await page.fill("#deletion-days", "7");
await page.click("#schedule-deletion");
await page.waitForFunction(() => document.querySelector("#metadata")?.textContent?.includes("PendingDeletion"));
await settled("#cancel-deletion");
await shot("04-key-pending-deletion");
await page.click("#cancel-deletion");
await page.waitForFunction(() => document.querySelector("#metadata dl")?.textContent?.includes("Disabled"));

// An error is shown as AWS writes it.
await settled("#new-alias");
await page.fill("#new-alias", "no-prefix");
await page.click("#create-alias");
await page.waitForSelector("#aliases .error");
assert.match(await text("#aliases .error"),
  /ValidationException: Alias must start with the prefix "alias\/"/);
await page.fill("#new-alias", "alias/console-made");
await page.click("#create-alias");
await page.waitForFunction(() => document.querySelector("#aliases table")?.textContent?.includes("alias/console-made"));
await settled("#policy pre");
await shot("05-key-detail");

// The policy editor's "what changes" view names bob gaining Decrypt.
await page.goto(`${url}/console/#/key/${region}/${visibleKey}/policy`);
await page.waitForFunction(() => !document.querySelector("#policy-editor")?.disabled);
const current = JSON.parse(await page.inputValue("#policy-editor"));
current.Statement.push({
  Sid: "BobDecrypts", Effect: "Allow", Principal: { AWS: bobArn }, Action: "kms:Decrypt", Resource: "*",
});
await page.fill("#policy-editor", JSON.stringify(current, null, 2));
await page.click("#preview-policy");
await page.waitForSelector("#policy-changes table");
const rows = await page.$$eval("#policy-changes tbody tr", (trs) => trs.map((tr) => tr.textContent));
assert.ok(rows.some((r) => r.includes(bobArn) && r.includes("kms:Decrypt") && r.includes("gains")),
  `bob gains Decrypt: ${JSON.stringify(rows)}`);
assert.ok(rows.every((r) => !r.includes("loses")), "nobody loses anything");
await shot("06-policy-what-changes");
await page.click("#save-policy");
await page.waitForSelector("#policy-saved .ok");

// A policy that would lock the editor out is flagged before it is saved, and refused on save.
const lockout = { Version: "2012-10-17", Statement: [
  { Sid: "OnlyBob", Effect: "Allow", Principal: { AWS: bobArn }, Action: "kms:*", Resource: "*" }] };
await page.fill("#policy-editor", JSON.stringify(lockout, null, 2));
await page.click("#preview-policy");
await page.waitForSelector("#policy-changes .error");
assert.match(await text("#policy-changes .error"), /Lockout/);
await page.click("#save-policy");
await page.waitForSelector("#policy-saved .error");
assert.match(await text("#policy-saved .error"),
  /MalformedPolicyDocumentException: The new key policy will not allow you to update the key policy in the future/);
await shot("07-policy-lockout");

// The audit page finds the Encrypt call of a known request id and shows its record.
await page.goto(`${url}/console/#/audit`);
await page.selectOption("#audit-attribute", "EventName");
await page.fill("#audit-value", "Encrypt");
await page.click("#audit-search");
await settled("#audit-results table");
await page.fill("#audit-request-id", encryptRequestId);
await page.waitForFunction(() => document.querySelectorAll("#audit-results tbody tr").length === 1);
assert.match(await text("#audit-results tbody tr"), new RegExp(encryptRequestId));
await page.click("#audit-results .show-record");
await page.waitForSelector("#audit-detail pre");
const record = JSON.parse(await text("#audit-detail pre"));
assert.equal(record.requestID, encryptRequestId);
assert.equal(record.eventName, "Encrypt");
await shot("08-audit");

// The key's usage page: calls per day as a chart, by operation and caller, last use.
await page.goto(`${url}/console/#/key/${region}/${visibleKey}/usage`);
await settled("#usage-results figure.chart");
await settled("#last-use dl");
assert.match(await text("#usage-results"), /Encrypt/);
assert.match(await text("#last-use"), /Encrypt/);
await shot("09-key-usage");

// Phone width: the keys page fits without sideways scrolling.
await page.setViewportSize({ width: 390, height: 844 });
await page.goto(`${url}/console/#/keys`);
await settled("#key-list table");
const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
assert.ok(overflow <= 0, `no sideways scrolling at phone width (${overflow}px over)`);
await shot("10-keys-phone");
await page.setViewportSize({ width: 1280, height: 800 });

await signOutAndCheck(root);
assert.deepEqual(pageErrors, [], "no script error in the page");
await browser.close();
console.log(JSON.stringify(facts));
