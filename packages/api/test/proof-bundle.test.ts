/**
 * `GET /api/v1/proof/:hash` (api.md §2.4, DESIGN decision 6): the bundle is checked offline by
 * `core.verifyProofBundle`, trusting only the validator key in the chain's genesis. A bundle
 * altered in any single byte — the record, the tx, its Merkle path, a header, a signature —
 * must be refused; an absence proof must verify as absence; a registration not yet on the
 * ledger has no proof (409 NOT_CONFIRMED).
 */
import assert from "node:assert/strict";
import { createHash, generateKeyPairSync } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ContentRecord, leafHash, type ProofBundle, ProofError, verifyProofBundle } from "@daon/core";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

/** Slower blocks than the default, so the batcher's several txs land in one block and tx proofs have aunts. */
const TIMEOUT_COMMIT_MS = 1000;

type Bundle = ProofBundle & { success?: boolean };

interface Answer {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field
  body: any;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fromBase64 = (text: string) => new Uint8Array(Buffer.from(text, "base64"));
const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

/** A copy of `bytes` with byte `index` changed (every bit flipped). */
function flipped(bytes: Uint8Array, index: number): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[index] ^= 0xff;
  return copy;
}

/** The string with its last hex digit replaced by another hex digit of the same case: still well-formed, different. */
function withOneCharacterChanged(text: string): string | undefined {
  for (let i = text.length - 1; i >= 0; i--) {
    const c = text[i];
    let replacement: string | undefined;
    if (/[0-8]/.test(c)) replacement = String(Number(c) + 1);
    else if (c === "9") replacement = "8";
    else if (/[A-E]/.test(c) || /[a-e]/.test(c)) replacement = String.fromCharCode(c.charCodeAt(0) + 1);
    else if (c === "F" || c === "f") replacement = String.fromCharCode(c.charCodeAt(0) - 1);
    if (replacement !== undefined) return text.slice(0, i) + replacement + text.slice(i + 1);
  }
  return undefined;
}

/** Every variant of `json` with one leaf changed: a string by one character, a number by one. */
function singleFieldChanges(json: unknown, path: string[] = []): { field: string; apply: (target: unknown) => void }[] {
  if (typeof json === "string" || typeof json === "number") {
    const changed = typeof json === "number" ? json + 1 : withOneCharacterChanged(json);
    if (changed === undefined) return [];
    return [
      {
        field: path.join("."),
        apply: (target) => {
          let node = target as Record<string, unknown>;
          for (const key of path.slice(0, -1)) node = node[key] as Record<string, unknown>;
          node[path.at(-1)!] = changed;
        },
      },
    ];
  }
  if (json && typeof json === "object") {
    return Object.entries(json).flatMap(([key, value]) => singleFieldChanges(value, [...path, key]));
  }
  return [];
}

for (const storage of STORAGE_PATHS) {
  describe(`proof bundles verified offline (${storage})`, () => {
    let system: TestSystem;
    let trusted: { validatorPublicKey: Uint8Array; chainId: string };
    /** Confirmed registrations and their bundles; at least one tx shares its block with others, so its proof has aunts. */
    const confirmed: { contentHash: string; blockHeight: number; txHash: string; bundle: Bundle }[] = [];
    let withAunts: Bundle;

    const get = async (path: string): Promise<Answer> => {
      const response = await fetch(`${system.apiUrl}${path}`);
      return { status: response.status, headers: response.headers, body: await response.json() };
    };
    const protect = async (content: string, wait: "false" | "true"): Promise<Answer> => {
      const response = await fetch(`${system.apiUrl}/api/v1/protect?wait=${wait}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ content }),
      });
      return { status: response.status, headers: response.headers, body: await response.json() };
    };

    /** The positions or fields whose change the verifier did not refuse with a ProofError. */
    function notRefused(variants: { label: string; bundle: Bundle }[]): string[] {
      const accepted: string[] = [];
      for (const { label, bundle } of variants) {
        try {
          verifyProofBundle(bundle, trusted);
          accepted.push(label);
        } catch (error) {
          if (!(error instanceof ProofError)) accepted.push(`${label} (threw ${(error as Error).name}, not ProofError)`);
        }
      }
      return accepted;
    }

    before(async () => {
      system = await startTestSystem(storage, {}, { timeoutCommitMs: TIMEOUT_COMMIT_MS });
      trusted = {
        validatorPublicKey: fromBase64(system.ledger.node.home.genesis.validators[0].pub_key.value),
        chainId: system.chainId,
      };
      // Registrations a little apart: the batcher (every 150 ms) sends several txs within one block.
      for (let round = 0; round < 5 && !withAunts; round++) {
        const hashes: string[] = [];
        for (let i = 0; i < 5; i++) {
          const answer = await protect(`proof bundle ${round}.${i} on ${system.chainId}`, "false");
          assert.equal(answer.status, 202, JSON.stringify(answer.body));
          hashes.push(answer.body.contentHash);
          await sleep(200);
        }
        for (const contentHash of hashes) {
          let registration: Answer | undefined;
          for (let attempt = 0; attempt < 100; attempt++) {
            registration = await get(`/api/v1/verify/${contentHash}`);
            if (registration.body.status === "confirmed") break;
            await sleep(200);
          }
          assert.equal(registration?.body.status, "confirmed", `${contentHash} was confirmed`);
          const proof = await get(`/api/v1/proof/${contentHash}`);
          assert.equal(proof.status, 200, JSON.stringify(proof.body));
          confirmed.push({
            contentHash,
            blockHeight: registration!.body.blockHeight,
            txHash: registration!.body.txHash,
            bundle: proof.body,
          });
          if (proof.body.txProof.aunts.length > 0) withAunts ??= proof.body;
        }
      }
      assert.ok(withAunts, "some tx shared its block with another, so its Merkle proof has aunts");
    });
    after(() => system?.stop());

    test("each confirmed registration's bundle verifies offline against the genesis validator, naming its record and tx", () => {
      assert.ok(confirmed.length >= 5);
      for (const { contentHash, blockHeight, txHash, bundle } of confirmed) {
        assert.equal(bundle.version, "daon-proof-v1");
        assert.equal(bundle.chainId, system.chainId);
        assert.equal(bundle.contentHash, contentHash);
        assert.equal(bundle.present, true);
        assert.equal(bundle.tx?.hash, txHash);
        assert.equal(bundle.tx?.height, blockHeight);
        assert.equal(bundle.header?.height, String(blockHeight));
        assert.equal(Number(bundle.stateHeader.height), bundle.stateProof.height + 1);
        assert.equal(bundle.validators[0].pub_key.value, system.ledger.node.home.genesis.validators[0].pub_key.value);

        const verified = verifyProofBundle(bundle, trusted);
        assert.equal(verified.present, true);
        if (!verified.present) continue;
        assert.equal(verified.height, blockHeight);
        assert.equal(verified.txHash, txHash);
        assert.equal(verified.record.contentHash, `sha256:${contentHash}`);
        assert.equal(verified.record.txHash, txHash);
        assert.equal(Number(verified.record.height), blockHeight);
        assert.equal(verified.record.platform, "api");
        assert.equal(verified.record.license, "liberation_v1");
        // The bundle's readable copies say what the proof proves.
        assert.deepEqual(ContentRecord.decode(fromBase64(bundle.stateProof.value)), verified.record);
        assert.equal(bundle.record?.contentHash, verified.record.contentHash);
        assert.equal(bundle.record?.txHash, verified.record.txHash);
        assert.equal(bundle.record?.creator, verified.record.creator);
      }
      assert.ok(withAunts.txProof!.total > 1);
    });

    test("the bundle is the same whichever accepted form of the hash asks for it", async () => {
      const { contentHash, bundle } = confirmed[0];
      const again = await get(`/api/v1/proof/sha256:${contentHash.toUpperCase()}`);
      assert.equal(again.status, 200);
      assert.equal(again.body.contentHash, contentHash);
      assert.deepEqual(again.body.tx, bundle.tx);
      assert.deepEqual(again.body.header, bundle.header);
      assert.equal(verifyProofBundle(again.body, trusted).present, true);
    });

    test("trust is in the genesis key and chain: another validator key or another chain id refuses the bundle", () => {
      const other = generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x!;
      assert.throws(
        () => verifyProofBundle(withAunts, { validatorPublicKey: new Uint8Array(Buffer.from(other, "base64url")) }),
        ProofError,
      );
      assert.throws(() => verifyProofBundle(withAunts, { ...trusted, chainId: `${system.chainId}-other` }), ProofError);
    });

    test("changing any single byte of the record inside the state proof (proof op data) is refused", () => {
      const op = withAunts.stateProof.proofOps[0];
      const data = fromBase64(op.data);
      const record = fromBase64(withAunts.stateProof.value);
      const at = Buffer.from(data).indexOf(Buffer.from(record));
      assert.ok(at > 0 && record.length > 50, "the proof op carries the record bytes");
      const variants = Array.from({ length: record.length }, (_, i) => {
        const bundle = structuredClone(withAunts);
        bundle.stateProof.proofOps[0].data = toBase64(flipped(data, at + i));
        return { label: `record byte ${i}`, bundle };
      });
      assert.deepEqual(notRefused(variants), []);
    });

    test("changing any single byte anywhere in the proof op data is refused", () => {
      const data = fromBase64(withAunts.stateProof.proofOps[0].data);
      const variants = Array.from({ length: data.length }, (_, i) => {
        const bundle = structuredClone(withAunts);
        bundle.stateProof.proofOps[0].data = toBase64(flipped(data, i));
        return { label: `op data byte ${i}`, bundle };
      });
      assert.deepEqual(notRefused(variants), []);
    });

    test("changing any single byte of the record bytes in stateProof.value is refused", () => {
      const record = fromBase64(withAunts.stateProof.value);
      const variants = Array.from({ length: record.length }, (_, i) => {
        const bundle = structuredClone(withAunts);
        bundle.stateProof.value = toBase64(flipped(record, i));
        return { label: `stateProof.value byte ${i}`, bundle };
      });
      assert.deepEqual(notRefused(variants), []);
    });

    test("changing any single byte of the tx's raw bytes is refused, even with the tx hash and leaf hash made to match", () => {
      const raw = fromBase64(withAunts.tx!.raw);
      const variants = Array.from({ length: raw.length }, (_, i) => {
        const bundle = structuredClone(withAunts);
        bundle.tx!.raw = toBase64(flipped(raw, i));
        return { label: `raw byte ${i}`, bundle };
      }).concat(
        Array.from({ length: raw.length }, (_, i) => {
          const bundle = structuredClone(withAunts);
          const changed = flipped(raw, i);
          const hash = createHash("sha256").update(changed).digest();
          bundle.tx!.raw = toBase64(changed);
          bundle.tx!.hash = hash.toString("hex").toUpperCase();
          bundle.txProof!.leafHash = toBase64(leafHash(hash));
          return { label: `raw byte ${i} with matching hashes`, bundle };
        }),
      );
      assert.deepEqual(notRefused(variants), []);
    });

    test("changing any single byte of the tx proof's aunts is refused", () => {
      const aunts = withAunts.txProof!.aunts.map(fromBase64);
      const variants = aunts.flatMap((aunt, j) =>
        Array.from({ length: aunt.length }, (_, i) => {
          const bundle = structuredClone(withAunts);
          bundle.txProof!.aunts[j] = toBase64(flipped(aunt, i));
          return { label: `aunt ${j} byte ${i}`, bundle };
        }),
      );
      assert.ok(variants.length >= 32);
      assert.deepEqual(notRefused(variants), []);
    });

    for (const part of ["header", "stateHeader"] as const) {
      test(`changing any field of the ${part} (app_hash, data_hash, time, …) is refused`, () => {
        const changes = singleFieldChanges(withAunts[part]);
        const fields = changes.map((c) => c.field);
        for (const field of ["app_hash", "data_hash", "time", "height", "chain_id", "last_block_id.hash", "proposer_address"]) {
          assert.ok(fields.includes(field), `${field} is changed`);
        }
        const variants = changes.map(({ field, apply }) => {
          const bundle = structuredClone(withAunts);
          apply(bundle[part]);
          assert.notDeepEqual(bundle[part], withAunts[part]);
          return { label: `${part}.${field}`, bundle };
        });
        assert.deepEqual(notRefused(variants), []);
      });
    }

    for (const part of ["commit", "stateCommit"] as const) {
      test(`changing any single byte of the ${part}'s signature, or its timestamp or block id, is refused`, () => {
        const signature = fromBase64(withAunts[part]!.signatures[0].signature!);
        assert.equal(signature.length, 64);
        const variants = Array.from({ length: signature.length }, (_, i) => {
          const bundle = structuredClone(withAunts);
          bundle[part]!.signatures[0].signature = toBase64(flipped(signature, i));
          return { label: `${part} signature byte ${i}`, bundle };
        });
        for (const { field, apply } of singleFieldChanges(withAunts[part])) {
          if (field.endsWith(".signature")) continue;
          const bundle = structuredClone(withAunts);
          apply(bundle[part]);
          variants.push({ label: `${part}.${field}`, bundle });
        }
        assert.deepEqual(notRefused(variants), []);
      });
    }

    test("?absent=true for an unknown hash gives present: false with an absence proof that verifies, and refuses tampering", async () => {
      const unknown = createHash("sha256").update(`never registered on ${system.chainId}`).digest("hex");
      const answer = await get(`/api/v1/proof/${unknown}?absent=true`);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const bundle: Bundle = answer.body;
      assert.equal(bundle.version, "daon-proof-v1");
      assert.equal(bundle.contentHash, unknown);
      assert.equal(bundle.present, false);
      assert.equal(bundle.record, undefined);
      assert.equal(bundle.tx, undefined);
      assert.deepEqual(verifyProofBundle(bundle, trusted), { present: false, height: bundle.stateProof.height });

      const claimed = structuredClone(bundle);
      claimed.present = true;
      const data = fromBase64(bundle.stateProof.proofOps[0].data);
      const variants = [{ label: "present: true", bundle: claimed }].concat(
        Array.from({ length: data.length }, (_, i) => {
          const tampered = structuredClone(bundle);
          tampered.stateProof.proofOps[0].data = toBase64(flipped(data, i));
          return { label: `absence op data byte ${i}`, bundle: tampered };
        }),
        singleFieldChanges(bundle.stateHeader).map(({ field, apply }) => {
          const tampered = structuredClone(bundle);
          apply(tampered.stateHeader);
          return { label: `stateHeader.${field}`, bundle: tampered };
        }),
      );
      assert.deepEqual(notRefused(variants), []);

      // A registered hash is not proved absent: asking with ?absent=true still gives its presence.
      const present = await get(`/api/v1/proof/${confirmed[0].contentHash}?absent=true`);
      assert.equal(present.status, 200);
      assert.equal(present.body.present, true);
      assert.equal(verifyProofBundle(present.body, trusted).present, true);
    });

    test("an unknown hash without ?absent=true is 404 NOT_FOUND; a malformed one 400 INVALID_HASH", async () => {
      const unknown = createHash("sha256").update(`not here either, ${system.chainId}`).digest("hex");
      const missing = await get(`/api/v1/proof/${unknown}`);
      assert.equal(missing.status, 404);
      assert.deepEqual(Object.keys(missing.body).sort(), ["error", "success"]);
      assert.equal(missing.body.success, false);
      assert.equal(missing.body.error.code, "NOT_FOUND");
      assert.equal(missing.body.error.requestId, missing.headers.get("x-request-id"));

      const malformed = await get(`/api/v1/proof/${unknown.slice(1)}`);
      assert.equal(malformed.status, 400);
      assert.equal(malformed.body.error.code, "INVALID_HASH");
    });

    test("a registration not yet on the ledger has no proof: 409 NOT_CONFIRMED with Retry-After", async () => {
      const outcomes: number[] = [];
      for (let attempt = 0; attempt < 5; attempt++) {
        const registration = await protect(`pending proof ${attempt} on ${system.chainId}`, "false");
        assert.equal(registration.status, 202);
        // Asked at once, in the same tick as the answer arrives: usually before the next block.
        const proof = await get(`/api/v1/proof/${registration.body.contentHash}`);
        outcomes.push(proof.status);
        if (proof.status === 200) {
          // Already confirmed after all: then the bundle is complete and verifies.
          assert.equal(verifyProofBundle(proof.body, trusted).present, true);
          continue;
        }
        assert.equal(proof.status, 409, JSON.stringify(proof.body));
        assert.deepEqual(Object.keys(proof.body).sort(), ["error", "success"]);
        assert.equal(proof.body.success, false);
        assert.equal(proof.body.error.code, "NOT_CONFIRMED");
        assert.equal(proof.body.error.requestId, proof.headers.get("x-request-id"));
        const retryAfter = Number(proof.headers.get("retry-after"));
        assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${proof.headers.get("retry-after")}`);
      }
      assert.ok(outcomes.includes(409), `at least one proof was asked for before confirmation (got ${outcomes.join(", ")})`);
    });
  });
}
