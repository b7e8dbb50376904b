/**
 * The API hashes exactly as `core` does (api.md §2.1): every vector in
 * packages/core/test-vectors/content-hashes.json goes through the public surface — text as
 * `{content}`, files as application/octet-stream bytes, pre-computed hashes as
 * `{contentHash}` — and comes back with the vector's SHA-256 or its error code in the envelope.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { ContentError, hashText } from "@daon/core";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

type Outcome = { sha256: string } | { error: string };

interface Vectors {
  text: Array<{ name: string; input: string } & ({ canonical: string; sha256: string } | { error: string })>;
  rawText: Array<{ name: string; input: string } & Outcome>;
  files: Array<{ name: string; bytesBase64: string } & Outcome>;
  hashInputs: Array<{ name: string; input: string } & ({ normalized: string } | { error: string })>;
}

const vectors: Vectors = JSON.parse(readFileSync(new URL("../../core/test-vectors/content-hashes.json", import.meta.url), "utf8"));

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field
  body: any;
}

/** The canonical hash core gives a text, or undefined when core refuses it. */
function canonicalHashOf(text: string): string | undefined {
  try {
    return hashText(text);
  } catch (error) {
    if (error instanceof ContentError) return undefined;
    throw error;
  }
}

for (const storage of STORAGE_PATHS) {
  describe(`content hashing through the API matches core's vectors (${storage})`, () => {
    let system: TestSystem;
    /** Hashes registered so far in this system: a repeat answers 200 existing, a first registration 202 pending. */
    const registered = new Set<string>();

    before(async () => {
      // Some 300 requests in a few seconds: well within limits raised for this test.
      system = await startTestSystem(storage, { PROTECT_RATE_LIMIT_MAX: "100000", RATE_LIMIT_MAX: "100000" });
    });
    after(() => system?.stop());

    async function send(path: string, body: Uint8Array<ArrayBuffer> | string, contentType: string): Promise<Answer> {
      const response = await fetch(`${system.apiUrl}${path}`, { method: "POST", headers: { "content-type": contentType }, body });
      return { status: response.status, headers: response.headers, body: await response.json() };
    }
    const postJson = (path: string, value: unknown) => send(path, JSON.stringify(value), "application/json");
    const postBytes = (path: string, bytes: Uint8Array<ArrayBuffer>) => send(path, bytes, "application/octet-stream");
    async function get(path: string): Promise<Answer> {
      const response = await fetch(`${system.apiUrl}${path}`);
      return { status: response.status, headers: response.headers, body: await response.json() };
    }

    function assertRefused(answer: Answer, code: string) {
      assert.equal(answer.status, 400, JSON.stringify(answer.body));
      assert.equal(answer.body.success, false);
      assert.equal(answer.body.error.code, code);
      assert.equal(answer.body.error.requestId, answer.headers.get("x-request-id"));
    }

    /** A protect answer with wait=false: the vector's hash, 202 pending the first time, 200 existing after. */
    function assertProtected(answer: Answer, sha256: string, type: string) {
      const seen = registered.has(sha256);
      assert.equal(answer.status, seen ? 200 : 202, JSON.stringify(answer.body));
      assert.equal(answer.body.success, true);
      assert.equal(answer.body.contentHash, sha256);
      assert.equal(answer.body.ledgerContentHash, `sha256:${sha256}`);
      assert.equal(answer.body.existing, seen);
      if (!seen) {
        assert.equal(answer.body.status, "pending");
        assert.equal(answer.body.metadata.type, type);
      }
      registered.add(sha256);
    }

    for (const vector of vectors.text) {
      test(`text: ${vector.name}`, async () => {
        const answer = await postJson("/api/v1/protect?wait=false", { content: vector.input });
        const found = await postJson("/api/v1/verify-content", { content: vector.input });
        if ("error" in vector) {
          assertRefused(answer, vector.error);
          assertRefused(found, vector.error);
          return;
        }
        assertProtected(answer, vector.sha256, "text");
        assert.equal(found.status, 200, JSON.stringify(found.body));
        assert.equal(found.body.contentHash, vector.sha256);
        assert.equal(found.body.matchedBy, "canonical");
      });
    }

    for (const vector of vectors.files) {
      test(`file: ${vector.name}`, async () => {
        const bytes = new Uint8Array(Buffer.from(vector.bytesBase64, "base64"));
        const answer = await postBytes("/api/v1/protect?wait=false", bytes);
        const found = await postBytes("/api/v1/verify-content", bytes);
        if ("error" in vector) {
          assertRefused(answer, vector.error);
          assertRefused(found, vector.error);
          return;
        }
        assertProtected(answer, vector.sha256, "file");
        if (!answer.body.existing) assert.equal(answer.body.metadata.title, "Untitled File");
        assert.equal(found.status, 200, JSON.stringify(found.body));
        assert.equal(found.body.contentHash, vector.sha256);
        assert.equal(found.body.matchedBy, "file");
      });
    }

    for (const vector of vectors.hashInputs) {
      test(`pre-computed hash: ${vector.name}`, async () => {
        const answer = await postJson("/api/v1/protect?wait=false", { contentHash: vector.input });
        // The same input as a path parameter (an empty one names another route).
        const looked = vector.input === "" ? undefined : await get(`/api/v1/verify/${encodeURIComponent(vector.input)}`);
        if ("error" in vector) {
          assertRefused(answer, vector.error);
          if (looked) assertRefused(looked, vector.error);
          return;
        }
        assertProtected(answer, vector.normalized, "hash");
        assert.equal(looked?.status, 200, JSON.stringify(looked?.body));
        assert.equal(looked?.body.contentHash, vector.normalized);
        assert.equal(looked?.body.isValid, true);
      });
    }

    for (const vector of vectors.rawText) {
      // api.md §2.4: verify-content tries the canonical hash, then the raw one (also for text that canonicalises to nothing).
      test(`raw text via verify-content: ${vector.name}`, async () => {
        if ("error" in vector) {
          assertRefused(await postJson("/api/v1/verify-content", { content: vector.input }), vector.error);
          return;
        }
        // Register the raw hash as a pre-computed one, then look the text up.
        assertProtected(await postJson("/api/v1/protect?wait=false", { contentHash: vector.sha256 }), vector.sha256, "hash");
        const found = await postJson("/api/v1/verify-content", { content: vector.input });
        assert.equal(found.status, 200, JSON.stringify(found.body));
        const canonical = canonicalHashOf(vector.input);
        const byCanonical = canonical !== undefined && registered.has(canonical);
        assert.equal(found.body.matchedBy, byCanonical ? "canonical" : "raw");
        assert.equal(found.body.contentHash, byCanonical ? canonical : vector.sha256);
      });
    }

    test("a pre-computed hash is registered and confirmed on the ledger without the content ever being sent", async () => {
      const text = `a manuscript its author keeps to herself, ${system.chainId}`;
      const sha256 = createHash("sha256").update(text, "utf8").digest("hex");
      const answer = await postJson("/api/v1/protect", {
        contentHash: `sha256:${sha256.toUpperCase()}`,
        metadata: { title: "Kept private" },
      });
      assert.equal(answer.status, 201, JSON.stringify(answer.body));
      assert.equal(answer.body.contentHash, sha256);
      assert.equal(answer.body.status, "confirmed");
      assert.deepEqual(answer.body.metadata, { title: "Kept private", type: "hash", description: null, author: null });
      assert.ok(answer.body.blockHeight >= 1);
      assert.match(answer.body.txHash, /^[0-9A-F]{64}$/);
      assert.equal(
        system.logs.some((line) => line.includes("manuscript")),
        false,
        "the text never reached the API",
      );

      const ledger = await system.api.ledger.verifyContent(`sha256:${sha256}`);
      assert.equal(ledger.response.verified, true);
      assert.equal(ledger.response.txHash, answer.body.txHash);
      assert.equal(Number(ledger.response.height), answer.body.blockHeight);

      // Whoever holds the text can later show it matches.
      const found = await postJson("/api/v1/verify-content", { content: text });
      assert.equal(found.status, 200);
      assert.equal(found.body.matchedBy, "canonical");
      assert.equal(found.body.protectionId, answer.body.protectionId);
      assert.equal(found.body.status, "confirmed");
    });
  });
}
