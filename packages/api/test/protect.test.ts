import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

for (const storage of STORAGE_PATHS) {
  describe(`protect and verify (${storage})`, () => {
    let system: TestSystem;
    before(async () => {
      system = await startTestSystem(storage);
    });
    after(() => system.stop());

    const post = (path: string, body: unknown) =>
      fetch(`${system.apiUrl}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

    test("a text is registered, confirmed on the ledger, and found again; a repeat answers 200 existing", async () => {
      const response = await post("/api/v1/protect", {
        content: "<p>Tom &amp; Jerry &lt;3 caf&#233;</p>",
        metadata: { title: "T", type: "test" },
      });
      assert.equal(response.status, 201);
      const body = await response.json();
      assert.equal(body.contentHash, "1650e8574e2f230e04a994553a262cfbceea59bed7e59b3b89c058959cc997ee");
      assert.equal(body.status, "confirmed");
      assert.ok(body.blockHeight >= 1);
      assert.match(body.txHash, /^[0-9A-F]{64}$/);

      const again = await post("/api/v1/protect", { content: "<p>Tom &amp; Jerry &lt;3 caf&#233;</p>" });
      assert.equal(again.status, 200);
      const repeat = await again.json();
      assert.equal(repeat.existing, true);
      assert.equal(repeat.protectionId, body.protectionId);

      const verify = await (await fetch(`${system.apiUrl}/api/v1/verify/sha256:${body.contentHash.toUpperCase()}`)).json();
      assert.equal(verify.isValid, true);
      assert.equal(verify.blockHeight, body.blockHeight);
    });

    test("wait=false answers 202 pending at once; the registration is confirmed a few blocks later", async () => {
      const response = await post("/api/v1/protect?wait=false", { contentHash: "ab".repeat(32) });
      assert.equal(response.status, 202);
      assert.equal((await response.json()).status, "pending");
      let status = "pending";
      for (let i = 0; i < 50 && status !== "confirmed"; i++) {
        await new Promise((r) => setTimeout(r, 200));
        status = (await (await fetch(`${system.apiUrl}/api/v1/verify/${"ab".repeat(32)}`)).json()).status;
      }
      assert.equal(status, "confirmed");
    });
  });
}
