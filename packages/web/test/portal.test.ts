/**
 * The portal end to end, in real headless Chromium against a started system (ledger node +
 * API serving the built portal, PGlite): a creator protects a text and a file without the
 * content leaving the browser, opens the verification page and checks the proof there, signs
 * in by e-mail link and TOTP, finds the work in "my works" and transfers it; an administrator
 * registers and approves a platform, whose console manages keys, webhooks and usage. Every
 * page is screenshotted (test-results/portal/) and checked with axe-core.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DaonClient, hashText, verifyProof, verifyWebhook } from "@daon/sdk";
import { build } from "esbuild";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { ADMIN_EMAIL, Authenticator, Mailbox, startSystemWithMail, type TestSystem, WebhookReceiver } from "../../sdk/test/journey.js";
import { buildPortal, type PortalBuild } from "../src/build.js";
import { assertAccessible, assertFitsViewport, launch, look, openPage, type Recorded } from "./browser.js";

const VECTORS = join(import.meta.dirname, "../../core/test-vectors/content-hashes.json");
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

describe("the portal in Chromium (pglite)", () => {
  let system: TestSystem;
  let mailbox: Mailbox;
  let receiver: WebhookReceiver;
  let browser: Browser;
  let portal: PortalBuild;
  let creator: BrowserContext;
  let page: Page;
  let recorded: Recorded;
  const everyPage: Recorded[] = [];
  /** What the creator registered, for the later steps. */
  const works: { text?: string; hash?: string; fileHash?: string } = {};

  before(async () => {
    mailbox = await Mailbox.start();
    receiver = await WebhookReceiver.start();
    [portal, system, browser] = await Promise.all([buildPortal(), startSystemWithMail("pglite", mailbox), launch()]);
    creator = await browser.newContext({ viewport: { width: 1200, height: 900 }, acceptDownloads: true });
    ({ page, recorded } = await openPage(creator));
    everyPage.push(recorded);
  });
  after(async () => {
    await browser?.close();
    await system?.stop();
    await mailbox?.stop();
    await receiver?.stop();
  });

  const url = (path: string) => `${system.apiUrl}${path}`;
  const sentSince = (from: number) => recorded.requests.slice(from).filter((r) => r.body !== null);

  test("the API serves the portal: its CSP, cached assets, index.html for portal routes only, under 200 KB of script", async () => {
    const home = await fetch(url("/"));
    assert.equal(home.status, 200);
    assert.match(home.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(home.headers.get("content-security-policy") ?? "", /default-src 'self'/);
    const html = await home.text();
    assert.match(html, /DAON/);
    assert.ok(!/<script>|<script [^>]*>[^<]/.test(html.replace(/<script type="module" src="[^"]+"><\/script>/g, "")), "no inline script");
    assert.ok(!/https?:\/\//.test(html.replace(/<meta[^>]*>/g, "")), "nothing loaded from another origin");

    for (const path of ["/verify/sha256:abc", "/account", "/auth/verify", "/console"]) {
      const answer = await fetch(url(path));
      assert.equal(answer.status, 200, path);
      assert.match(await answer.text(), /DAON/);
    }
    const api404 = await fetch(url("/api/v1/no-such-route"));
    assert.equal(api404.status, 404);
    assert.equal((await api404.json()).error.code, "NOT_FOUND");

    const script = /<script type="module" src="([^"]+)"/.exec(html)![1];
    const asset = await fetch(url(script), { headers: { "accept-encoding": "br" } });
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get("content-type") ?? "", /^text\/javascript/);
    assert.equal(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(asset.headers.get("content-encoding"), "br");
    const again = await fetch(url(script), { headers: { "if-none-match": asset.headers.get("etag")! } });
    assert.equal(again.status, 304);
    assert.equal((await fetch(url("/assets/no-such-file.js"))).status, 404);
    const badge = await fetch(url("/badge.svg"));
    assert.equal(badge.headers.get("content-type"), "image/svg+xml");
    assert.equal(badge.headers.get("cross-origin-resource-policy"), "cross-origin", "other sites may show the badge");
    assert.equal((await fetch(url("/assets/..%2F..%2Fpackage.json"))).status, 404);

    assert.ok(portal.initialJsGzipBytes < 200 * 1024, `first load is ${portal.initialJsGzipBytes} bytes of gzip JavaScript`);
  });

  test("hashing in the browser gives the shared vectors' hashes (core's canonicalisation, in Chromium)", async () => {
    const vectors = JSON.parse(await readFile(VECTORS, "utf8"));
    const bundled = await build({
      entryPoints: [join(import.meta.dirname, "../src/app/hashing.ts")],
      bundle: true,
      format: "iife",
      globalName: "portalHashing",
      footer: { js: "globalThis.portalHashing = portalHashing;" },
      platform: "browser",
      write: false,
      logLevel: "silent",
    });
    await page.goto(url("/status"));
    await page.evaluate(bundled.outputFiles[0].text);
    // Plain JavaScript (not a function the test's TypeScript loader rewrites), run in the page.
    const computed: Record<"text" | "rawText" | "files" | "hashInputs", unknown[]> = await page.evaluate(`(async (v) => {
      const hashing = globalThis.portalHashing;
      const attempt = async (work) => {
        try {
          return await work();
        } catch (error) {
          return { error: error.code };
        }
      };
      const bytes = (base64) => Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
      return {
        text: await Promise.all(v.text.map((t) => attempt(() => hashing.hashText(t.input)))),
        rawText: await Promise.all(v.rawText.map((t) => attempt(() => hashing.hashRawText(t.input)))),
        files: await Promise.all(v.files.map((f) => attempt(() => hashing.hashFile(bytes(f.bytesBase64))))),
        hashInputs: await Promise.all(v.hashInputs.map((h) => attempt(() => hashing.parseContentHash(h.input)))),
      };
    })(${JSON.stringify(vectors)})`);
    const expected = (list: { sha256?: string; normalized?: string; error?: string }[]) =>
      list.map((v) => v.sha256 ?? v.normalized ?? { error: v.error });
    assert.deepEqual(computed.text, expected(vectors.text));
    assert.deepEqual(computed.rawText, expected(vectors.rawText));
    assert.deepEqual(computed.files, expected(vectors.files));
    assert.deepEqual(computed.hashInputs, expected(vectors.hashInputs));
    // The same code in Node agrees, so portal and SDK hash alike.
    assert.deepEqual(
      computed.text.filter((h: unknown) => typeof h === "string"),
      vectors.text.filter((v: { sha256?: string }) => v.sha256).map((v: { input: string }) => hashText(v.input)),
    );
  });

  test("a creator protects a text: only the hash leaves the browser, and the result card has the link, badges and proof", async () => {
    await page.goto(url("/"));
    await page.getByRole("heading", { name: "Protect your work" }).waitFor();
    await look(page, "protect");
    const text = `<p>A poem about the tide, ${randomBytes(6).toString("hex")}</p>`;
    works.text = text;
    works.hash = hashText(text);
    await page.getByLabel("Your text").fill(text);
    await page.getByTestId("computed-hash").getByText(works.hash).waitFor();
    await page.getByLabel("Title (optional)").fill("The tide");
    await page.getByRole("radio", { name: /^CC BY Anyone may share and adapt it, even commercially/ }).check();
    await page.getByRole("radio", { name: /^Ask me first/ }).check();
    await page.getByLabel("Licensing e-mail").fill("licensing@poet.example");
    const from = recorded.requests.length;
    await page.getByRole("button", { name: "Protect this work" }).click();
    await page.getByRole("heading", { name: "Your work is protected" }).waitFor({ timeout: 60_000 });

    const sent = sentSince(from);
    assert.ok(sent.length >= 1);
    for (const request of sent)
      assert.ok(!request.body!.toString("utf8").includes("poem about the tide"), `the text was sent to ${request.url}`);
    const protect = sent.find((r) => r.url.endsWith("/api/v1/protect?wait=false"));
    assert.ok(protect, "the registration went to /api/v1/protect");
    const body = JSON.parse(protect.body!.toString("utf8"));
    assert.equal(body.contentHash, works.hash);
    assert.equal(body.content, undefined);
    assert.equal(body.license, "cc-by");
    assert.equal(body.ai_training_policy, "contact_required");
    assert.equal(body.licensing_email, "licensing@poet.example");

    const card = page.locator("section.result");
    await card.getByText("Confirmed on the ledger").waitFor();
    await card.getByText(`sha256:${works.hash}`).waitFor();
    const link = await page.getByLabel("Verification link").inputValue();
    assert.match(link, new RegExp(`/verify/sha256:${works.hash}$`));
    assert.ok((await page.getByLabel("Embed badge (HTML)").inputValue()).includes(`href="${link}"`));
    assert.ok((await page.getByLabel("Embed badge (Markdown)").inputValue()).endsWith(`(${link})`));

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download the proof file" }).click(),
    ]);
    const bundle = JSON.parse(await readFile((await download.path())!, "utf8"));
    const genesis = JSON.parse(await readFile(join(system.dir, "node", "config", "genesis.json"), "utf8"));
    const proved = verifyProof(bundle, genesis);
    assert.ok(proved.present && proved.record.license === "cc_by");
    await look(page, "protect-result-text");
  });

  test("a creator protects a file dropped or chosen in the browser: its bytes are not uploaded", async () => {
    await page.goto(url("/"));
    await page.getByRole("radio", { name: "File" }).check();
    const marker = `DAON-FILE-MARKER-${randomBytes(8).toString("hex")}`;
    const bytes = Buffer.concat([randomBytes(3000), Buffer.from(marker), randomBytes(3000)]);
    works.fileHash = sha256(bytes);
    await page
      .getByLabel("Choose a file, or drop it here")
      .setInputFiles({ name: "scan.bin", mimeType: "application/octet-stream", buffer: bytes });
    await page.getByTestId("computed-hash").getByText(works.fileHash).waitFor();
    const from = recorded.requests.length;
    // Keyboard only from here: Enter in a field submits the form.
    await page.getByLabel("Title (optional)").fill("Scan");
    await page.getByLabel("Title (optional)").press("Enter");
    await page.getByRole("heading", { name: "Your work is protected" }).waitFor({ timeout: 60_000 });
    for (const request of sentSince(from)) assert.ok(!request.body!.includes(marker), `the file was sent to ${request.url}`);
    await page.locator("section.result").getByText(`sha256:${works.fileHash}`).waitFor();
    await look(page, "protect-result-file");
  });

  test("the verification page shows the registration, and its proof is checked in the browser", async () => {
    await page.goto(url(`/verify/sha256:${works.hash}`));
    await page.getByRole("heading", { name: "Registered on the DAON ledger" }).waitFor();
    const facts = page.locator("dl.facts");
    for (const shown of [
      "Confirmed on the ledger",
      "The tide",
      "CC BY",
      "Ask me first",
      "licensing@poet.example",
      `sha256:${works.hash}`,
    ]) {
      await facts.getByText(shown, { exact: false }).first().waitFor();
    }
    const verified = await new DaonClient({ baseUrl: system.apiUrl }).verify(works.hash!);
    assert.ok(verified.isValid);
    await facts.getByText(String(verified.blockHeight), { exact: true }).waitFor();
    await facts.getByText(verified.txHash!).waitFor();

    const from = recorded.requests.length;
    await page.getByRole("button", { name: "Check it yourself" }).click();
    await page.getByText("The proof holds: checked in your browser.").waitFor({ timeout: 30_000 });
    const fetched = recorded.requests.slice(from).map((r) => new URL(r.url).pathname);
    assert.ok(fetched.includes(`/api/v1/proof/${works.hash}`));
    assert.ok(fetched.includes("/api/v1/chain/genesis-validators"));
    await page.getByText(`Block ${verified.blockHeight} is signed by the validator`).waitFor();
    await look(page, "verification");

    // A key other than the genesis one: the same proof no longer holds.
    await page.getByText("Use a validator key you got elsewhere").click();
    await page.getByLabel("Validator public key (base64 Ed25519)").fill(randomBytes(32).toString("base64"));
    await page.getByRole("button", { name: "Check it yourself" }).click();
    await page.getByText(/The proof does not hold/).waitFor({ timeout: 30_000 });
  });

  test("verify by text, file or hash: found works open their page; an unknown hash's page says so plainly", async () => {
    await page.goto(url("/verify"));
    await look(page, "verify");
    // The text as typed again, without its markup: the canonical hash matches.
    await page.getByLabel("The text to look up").fill(works.text!);
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL(`**/verify/sha256:${works.hash}`);
    await page.getByRole("heading", { name: "Registered on the DAON ledger" }).waitFor();

    await page.goto(url("/verify"));
    await page.getByRole("radio", { name: "Hash" }).check();
    await page.getByLabel("Content hash").fill(works.fileHash!.toUpperCase());
    await page.getByRole("button", { name: "Verify" }).click();
    await page.waitForURL(`**/verify/sha256:${works.fileHash}`);

    const unknown = "ab".repeat(32);
    await page.goto(url(`/verify/sha256:${unknown}`));
    await page.getByRole("heading", { name: "Not registered", level: 1 }).waitFor();
    await page.getByText("No work with this content hash is registered on DAON.").waitFor();
    await page.getByText(`sha256:${unknown}`).waitFor();
    await look(page, "verification-unknown");

    await page.goto(url("/verify/sha256:not-a-hash"));
    await page.getByText(/This is not a content hash/).waitFor();

    await page.goto(url("/verify"));
    await page.getByLabel("The text to look up").fill(`never registered ${randomBytes(4).toString("hex")}`);
    await page.getByRole("button", { name: "Verify" }).click();
    await page.getByRole("heading", { name: "Not registered" }).waitFor();
  });

  test("the status page shows the chain, its height and block time, and the registrations", async () => {
    await page.goto(url("/status"));
    await page.getByText(system.chainId).waitFor();
    const stats = (await new DaonClient({ baseUrl: system.apiUrl }).stats()).stats;
    const tile = (label: string) => page.locator(".tile", { hasText: label }).locator(".tile-value");
    assert.ok(Number(await tile("Ledger height").textContent()) >= 1);
    assert.equal(await tile("Registrations").textContent(), String(stats.totalProtected));
    assert.match((await tile("Latest block").textContent()) ?? "", /UTC$/);
    await page.getByRole("region", { name: "Recent registrations" }).getByRole("link").first().waitFor();
    await look(page, "status");
  });

  test("sign-in by e-mail link and TOTP; my works; a transfer; sign-out everywhere", async () => {
    const email = "creator@daon.test";
    await page.goto(url("/sign-in"));
    await look(page, "sign-in");
    await page.getByLabel("E-mail address").fill(email);
    await page.getByRole("button", { name: "E-mail me a sign-in link" }).click();
    await page.getByText(`If ${email} can sign in, a link is on its way.`).waitFor();
    const token = await mailbox.signInToken(email);

    await page.goto(url(`/auth/verify#token=${token}`));
    await page.getByRole("heading", { name: "Set up your authenticator" }).waitFor();
    assert.equal(new URL(page.url()).hash, "", "the token left the address bar");
    await page.getByRole("img", { name: /QR code/ }).waitFor();
    await look(page, "enrol");
    const app = new Authenticator(await page.getByLabel("Setup key").inputValue());
    await page.getByLabel("The 6-digit code the app shows").fill(await app.nextCode());
    await page.getByRole("button", { name: "Confirm and sign in" }).click();
    await page.getByRole("heading", { name: "Save your backup codes" }).waitFor();
    const backupCodes = (await page.getByTestId("backup-codes").locator("li").allTextContents()).map((c) => c.trim());
    assert.equal(backupCodes.length, 10);
    await look(page, "backup-codes");
    await page.getByRole("button", { name: "I saved them: go to my works" }).click();
    await page.getByRole("heading", { name: "My works", level: 1 }).waitFor();
    const ownerId = await page.getByLabel(/Your owner id/).inputValue();
    assert.match(ownerId, /^o_[a-z2-7]{26}$/);

    // A work protected while signed in is the account's.
    await page.getByRole("link", { name: "Protect", exact: true }).click();
    const text = `My own essay ${randomBytes(6).toString("hex")}`;
    await page.getByLabel("Your text").fill(text);
    await page.getByLabel("Title (optional)").fill("Essay on ownership");
    await page.getByRole("button", { name: "Protect this work" }).click();
    await page.getByRole("heading", { name: "Your work is protected" }).waitFor({ timeout: 60_000 });
    await page.locator("dl.facts").getByText(ownerId).waitFor();

    await page.getByRole("link", { name: "My works" }).click();
    const row = page.getByRole("row", { name: /Essay on ownership/ });
    await row.waitFor();
    await page.getByLabel("Search by title or hash").fill("essay");
    await page.getByText("1 of 1 loaded work shown.").waitFor();
    await page.getByLabel("Search by title or hash").fill(hashText(text).slice(0, 12));
    await row.waitFor();
    await look(page, "account");

    // The recipient signs up elsewhere (through the SDK) and hands over their owner id.
    const recipient = new DaonClient({ baseUrl: system.apiUrl });
    const before = mailbox.count("recipient@daon.test");
    await recipient.auth.requestMagicLink("recipient@daon.test");
    const session = await recipient.auth.verifyMagicLink(await mailbox.signInToken("recipient@daon.test", before));
    const enrolment = await recipient.auth.setupTotp(session.session_id);
    await recipient.auth.confirmTotp(session.session_id, await new Authenticator(enrolment.manual_entry_key).nextCode());
    const recipientOwner = session.user.owner_id;

    await row.getByRole("button", { name: /Transfer/ }).click();
    await page.getByLabel("Recipient's owner id").fill(recipientOwner);
    await page.getByLabel("Code from your authenticator", { exact: true }).fill(await app.nextCode());
    await look(page, "account-transfer");
    await page.getByRole("button", { name: "Transfer this work" }).click();
    await page.getByText(`Transferred to ${recipientOwner}`).waitFor({ timeout: 60_000 });
    assert.deepEqual(
      (await recipient.me.works()).items.map((w) => w.contentHash),
      [hashText(text)],
    );
    await page.getByRole("button", { name: "Done" }).click();
    await page.getByText("No works yet.").waitFor();

    await page.getByLabel("Code from your authenticator, or a backup code").fill(backupCodes[0]);
    await page.getByRole("button", { name: "Sign out everywhere" }).click();
    await page.getByRole("heading", { name: "Sign in", level: 1 }).waitFor();
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Sign in" }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem("daon.tokens")), null, "no tokens are left in the browser");

    // Signing in again: the link, then a code (here one of the backup codes).
    await page.getByLabel("E-mail address").fill(email);
    const sentBefore = mailbox.count(email);
    await page.getByRole("button", { name: "E-mail me a sign-in link" }).click();
    await page.goto(url(`/auth/verify#token=${await mailbox.signInToken(email, sentBefore)}`));
    await page.getByRole("heading", { name: "Enter your code" }).waitFor();
    await look(page, "sign-in-code");
    await page.getByRole("button", { name: "Use a backup code instead" }).click();
    await page.getByLabel("A backup code (XXXX-XXXX)").fill(backupCodes[1].toLowerCase());
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { name: "My works", level: 1 }).waitFor();
    assert.equal(await page.getByLabel(/Your owner id/).inputValue(), ownerId);
  });

  test("an administrator registers and approves a platform; its console manages keys, webhooks and usage", async () => {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    const { page: admin, recorded: adminRecorded } = await openPage(context);
    everyPage.push(adminRecorded);
    await admin.goto(url("/sign-in"));
    await admin.getByLabel("E-mail address").fill(ADMIN_EMAIL);
    await admin.getByRole("button", { name: "E-mail me a sign-in link" }).click();
    await admin.getByText(/a link is on its way/).waitFor();
    await admin.goto(url(`/auth/verify#token=${await mailbox.signInToken(ADMIN_EMAIL)}`));
    const app = new Authenticator(await admin.getByLabel("Setup key").inputValue());
    await admin.getByLabel("The 6-digit code the app shows").fill(await app.nextCode());
    await admin.getByRole("button", { name: "Confirm and sign in" }).click();
    await admin.getByRole("button", { name: "I saved them: go to my works" }).click();

    await admin.getByRole("link", { name: "Admin" }).click();
    await admin.getByRole("heading", { name: "Administration" }).waitFor();
    await admin.getByLabel("Domain").fill("gallery.example");
    await admin.getByLabel("Name", { exact: true }).fill("The Gallery");
    await admin.getByLabel("Contact e-mail").fill("ops@gallery.example");
    await admin.getByRole("button", { name: "Register platform" }).click();
    const firstKey = await admin.getByLabel("First key of gallery.example").inputValue();
    assert.match(firstKey, /^DAON_BR_[0-9a-f]{64}$/);
    const platformRow = admin.getByRole("row", { name: /gallery\.example/ });
    await platformRow.getByText("pending").waitFor();
    await platformRow.getByRole("button", { name: "Approve gallery.example" }).click();
    await platformRow.getByText("active", { exact: true }).waitFor();
    await admin
      .getByRole("region", { name: "Audit log" })
      .getByText("platform.create")
      .first()
      .waitFor({ timeout: 10_000 })
      .catch(async () => {
        await admin.getByRole("button", { name: "Refresh" }).click();
        await admin.getByRole("region", { name: "Audit log" }).getByText("platform.create").first().waitFor();
      });
    await look(admin, "admin");

    // The platform's operator opens the console with the first key.
    await admin.getByRole("link", { name: "Platforms" }).click();
    await look(admin, "console-key");
    await admin.getByLabel("Platform key").fill(firstKey);
    await admin.getByRole("button", { name: "Open the console" }).click();
    await admin.getByRole("heading", { name: "The Gallery" }).waitFor();

    await admin.getByLabel("Name", { exact: true }).fill("ci");
    await admin.getByRole("button", { name: "Create key" }).click();
    const ciKey = await admin.getByLabel("New platform key").inputValue();
    assert.match(ciKey, /^DAON_BR_/);
    const ciRow = admin.getByRole("row", { name: /^ci / });
    await ciRow.getByRole("button", { name: "Revoke ci" }).click();
    await ciRow.getByRole("button", { name: "Revoke now ci" }).click();
    await ciRow.getByText("revoked").waitFor();
    const ci = await new DaonClient({ baseUrl: system.apiUrl, apiKey: ciKey }).platform.whoami().catch((error) => error.code);
    assert.equal(ci, "UNAUTHORIZED");

    await admin.getByLabel("URL (https)").fill(receiver.url);
    await admin.getByLabel("Description (optional)").fill("gallery receiver");
    await admin.getByRole("button", { name: "Add webhook" }).click();
    const secret = await admin.getByLabel("Signing secret").inputValue();
    const hook = admin.getByRole("article", { name: `Webhook ${receiver.url}` });
    await hook.getByRole("button", { name: "Send a test ping" }).click();
    await hook.getByText(/Test ping delivered: the receiver answered 200/).waitFor({ timeout: 30_000 });
    const ping = await receiver.waitFor((r) => r.headers["x-daon-webhook-event"] === "webhook.test");
    assert.equal((await verifyWebhook({ secret, body: ping.body, headers: ping.headers })).event, "webhook.test");

    // Works the platform registers make deliveries; one is sent again from the log.
    const platform = new DaonClient({ baseUrl: system.apiUrl, apiKey: firstKey });
    await platform.platform.protect({ username: "painter", contentHash: sha256(randomBytes(32)), metadata: { title: "Canvas" } });
    await receiver.waitFor((r) => r.headers["x-daon-webhook-event"] === "content.confirmed");
    await hook.getByRole("button", { name: "Show deliveries" }).click();
    const delivery = hook.getByRole("row", { name: /content\.confirmed/ });
    await delivery.getByText("success").waitFor();
    const deliveries = receiver.requests.length;
    await delivery.getByRole("button", { name: /Redeliver/ }).click();
    await receiver.waitFor((r) => receiver.requests.indexOf(r) >= deliveries && r.headers["x-daon-webhook-event"] === "content.confirmed");

    await admin.getByRole("img", { name: /Calls per (hour|day)/ }).waitFor();
    await look(admin, "console");

    await admin.getByRole("button", { name: "Rotate this console's key" }).click();
    // The panel of the key issued before shows until the rotation's answer replaces it.
    let rotated = ciKey;
    for (let attempt = 0; rotated === ciKey && attempt < 100; attempt++) {
      rotated = await admin.getByLabel("New platform key").inputValue();
      if (rotated === ciKey) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await admin.getByRole("button", { name: "Use the new key in this console" }).click();
    await admin.getByRole("row", { name: /this console/ }).waitFor();
    assert.equal((await new DaonClient({ baseUrl: system.apiUrl, apiKey: rotated }).platform.whoami()).broker.domain, "gallery.example");

    // Back in the administration: suspend, then reactivate.
    await admin.getByRole("link", { name: "Admin" }).click();
    await platformRow.getByRole("button", { name: "Suspend gallery.example" }).click();
    await admin.getByLabel("Reason for suspending gallery.example").fill("unpaid invoice");
    await admin.getByRole("button", { name: "Suspend now" }).click();
    await platformRow.getByText("suspended: unpaid invoice").waitFor();
    assert.equal(await platform.platform.whoami().catch((error) => error.code), "PLATFORM_NOT_ACTIVE");
    await platformRow.getByRole("button", { name: "Reactivate gallery.example" }).click();
    await platformRow.getByText("active", { exact: true }).waitFor();
    await context.close();
  });

  test("on a phone-sized screen every public page fits; the skip link is the first stop for keyboards", async () => {
    const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
    const { page: small, recorded: smallRecorded } = await openPage(phone);
    everyPage.push(smallRecorded);
    for (const [path, name, ready] of [
      ["/", "phone-protect", "Protect your work"],
      [`/verify/sha256:${works.hash}`, "phone-verification", "Registered on the DAON ledger"],
      ["/verify", "phone-verify", "Verify a work"],
      ["/status", "phone-status", "Network status"],
      ["/sign-in", "phone-sign-in", "Sign in"],
      ["/console", "phone-console", "Platform console"],
    ] as const) {
      await small.goto(url(path));
      await small.getByRole("heading", { name: ready, level: 1 }).waitFor();
      if (name === "phone-status") await small.getByText(system.chainId).waitFor();
      await assertFitsViewport(small, name);
      await look(small, name);
    }
    await phone.close();

    await page.goto(url("/"));
    await page.getByRole("heading", { name: "Protect your work" }).waitFor();
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Skip to content");
    await assertAccessible(page, "protect after navigation");
  });

  test("no page broke its Content Security Policy or threw an error", () => {
    assert.deepEqual(
      everyPage.flatMap((r) => r.problems),
      [],
    );
  });
});
