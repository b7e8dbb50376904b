/**
 * The SDK as it is published (`npm run build -w @daon/sdk`: one ES module, declarations,
 * `exports`), used against a started system from plain Node (no TypeScript loader) and from
 * real headless Chromium, where a consumer's bundler has packed it: protect, verify, proofs
 * checked in the browser, typed errors, cancellation, webhook signatures.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";
import { startTestSystem, type TestSystem } from "../../api/test/test-system.js";
import { buildSdkPackage } from "../src/packaging.js";
import { hashText } from "../src/index.js";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

describe("the published SDK package, in Node and in the browser (pglite)", () => {
  let system: TestSystem;
  let browser: Browser;
  let dist: string;
  before(async () => {
    [system, { outDir: dist }] = await Promise.all([startTestSystem("pglite"), buildSdkPackage()]);
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS });
  });
  after(async () => {
    await browser?.close();
    await system?.stop();
  });

  test("the package has the shape npm publishes: exports with types, an ES module, declarations, the README", async () => {
    const manifest = JSON.parse(await readFile(join(dist, "package.json"), "utf8"));
    assert.equal(manifest.name, "@daon/sdk");
    assert.equal(manifest.type, "module");
    assert.deepEqual(manifest.exports["."], { types: "./index.d.ts", import: "./index.js", default: "./index.js" });
    assert.ok(!JSON.stringify(manifest.dependencies).includes("@daon/"), "no private workspace package is a dependency");
    for (const file of manifest.files) assert.ok(existsSync(join(dist, file)), `${file} is in the package`);
    const declarations = await readFile(join(dist, "types", "sdk", "src", "client.d.ts"), "utf8");
    assert.match(declarations, /export declare class DaonClient/);
    assert.ok(!(await readFile(join(dist, "types", "sdk", "src", "proofs.d.ts"), "utf8")).includes("@daon/core"));
    assert.match(await readFile(join(dist, "README.md"), "utf8"), /verifyWebhook/);
  });

  test("plain Node imports the built module and protects and verifies with it", async () => {
    const text = `plain node ${randomBytes(6).toString("hex")}`;
    const script = `
      const { DaonClient, DaonApiError } = await import(${JSON.stringify(join(dist, "index.js"))});
      const daon = new DaonClient({ baseUrl: ${JSON.stringify(system.apiUrl)} });
      const work = await daon.protect(${JSON.stringify(text)}, { hashLocally: true });
      const found = await daon.verify(work.contentHash);
      const refused = await daon.verify("nope").catch((e) => e instanceof DaonApiError && e.code);
      console.log(JSON.stringify({ hash: work.contentHash, status: work.status, found: found.isValid, refused }));`;
    const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script]);
    const result = JSON.parse(stdout);
    assert.deepEqual(result, { hash: hashText(text), status: "confirmed", found: true, refused: "INVALID_HASH" });
  });

  test("in Chromium the bundled SDK protects without sending the content, checks the proof, and types its errors", async () => {
    const bundled = await build({
      entryPoints: [join(dist, "index.js")],
      bundle: true,
      format: "iife",
      globalName: "DaonSDK",
      footer: { js: "globalThis.DaonSDK = DaonSDK;" },
      platform: "browser",
      write: false,
      logLevel: "silent",
    });
    const page = await browser.newPage();
    const bodies: string[] = [];
    page.on("request", (request) => bodies.push(request.postData() ?? ""));
    await page.goto(`${system.apiUrl}/status`);
    // Evaluated, not injected as a <script>: the page's CSP (default-src 'self') stays in force for everything else.
    await page.evaluate(bundled.outputFiles[0].text);
    const text = `a browser's secret ${randomBytes(6).toString("hex")}`;
    const fileBytes = [...randomBytes(300)];
    const result = await page.evaluate(
      async ({ text, fileBytes }) => {
        // biome-ignore lint/suspicious/noExplicitAny: the bundle's global, typed by the package's declarations elsewhere
        const sdk = (globalThis as any).DaonSDK;
        const daon = new sdk.DaonClient();
        const work = await daon.protect(text, { hashLocally: true });
        const file = await daon.protectFile(new Blob([new Uint8Array(fileBytes)]));
        const found = await daon.verifyContent(text, { hashLocally: true });
        const proved = sdk.verifyProof(await daon.proof(work.contentHash), await daon.genesisValidators());
        const refused = await daon
          .verify("nope")
          .catch((e: unknown) => ({ typed: e instanceof sdk.DaonApiError, code: (e as { code: string }).code }));
        const controller = new AbortController();
        controller.abort();
        const cancelled = await daon.stats({ signal: controller.signal }).catch((e: unknown) => e instanceof sdk.DaonAbortError);
        const secret = "s".repeat(40);
        const signature = await sdk.webhookSignature(secret, 1_900_000_000, '{"event":"webhook.test"}');
        const webhook = await sdk.verifyWebhook({
          secret,
          body: '{"event":"webhook.test"}',
          headers: new Headers({
            "x-daon-webhook-timestamp": "1900000000",
            "x-daon-webhook-signature": signature,
            "x-daon-webhook-id": "whd_1",
          }),
          now: 1_900_000_000_000,
        });
        return {
          hash: work.contentHash,
          height: work.blockHeight,
          fileHash: file.contentHash,
          matchedBy: found.matchedBy,
          proved: { present: proved.present, height: proved.height },
          refused,
          cancelled,
          webhook: webhook.deliveryId,
        };
      },
      { text, fileBytes },
    );
    await page.close();
    assert.equal(result.hash, hashText(text));
    assert.equal(result.fileHash, createHash("sha256").update(Buffer.from(fileBytes)).digest("hex"));
    assert.equal(result.matchedBy, "canonical");
    assert.deepEqual(result.proved, { present: true, height: result.height });
    assert.deepEqual(result.refused, { typed: true, code: "INVALID_HASH" });
    assert.equal(result.cancelled, true);
    assert.equal(result.webhook, "whd_1");
    assert.ok(bodies.length >= 2);
    assert.ok(!bodies.some((body) => body.includes(text)), "the text left the browser");
  });
});
