import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  AI_TRAINING_POLICIES,
  canonicaliseText,
  ContentError,
  type ContentErrorCode,
  EMPTY_CONTENT_HASH,
  fromLedgerHash,
  hashBytes,
  hashRawText,
  hashText,
  LEDGER_LICENCES,
  LICENCES,
  licenceFromLedger,
  parseAiTrainingPolicy,
  parseContentHash,
  parseLicence,
  toLedgerHash,
} from "../src/content/index.js";

type Outcome = { sha256: string } | { error: ContentErrorCode };

interface Vectors {
  text: Array<{ name: string; input: string } & ({ canonical: string; sha256: string } | { error: ContentErrorCode })>;
  rawText: Array<{ name: string; input: string } & Outcome>;
  files: Array<{ name: string; bytesBase64: string } & Outcome>;
  hashInputs: Array<{ name: string; input: string } & ({ normalized: string } | { error: ContentErrorCode })>;
}

const vectors: Vectors = JSON.parse(readFileSync(new URL("../test-vectors/content-hashes.json", import.meta.url), "utf8"));

const HASH = "5ebde9ded539ae00451491463f5deeae1021fdd5be543a019ee897805364629a";

function throwsContentError(run: () => unknown, code: ContentErrorCode): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(error instanceof ContentError, `expected a ContentError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.ok(error.message.length > 0);
    return true;
  });
}

function bytesOf(base64: string): Uint8Array {
  return new Uint8Array(Buffer.from(base64, "base64"));
}

test("the vector file covers at least 40 canonical text vectors and the three spec vectors", () => {
  const canonical = vectors.text.filter((vector) => "canonical" in vector);
  assert.ok(canonical.length >= 40, `only ${canonical.length} text vectors`);
  const names = [vectors.text, vectors.rawText, vectors.files, vectors.hashInputs].flat().map((vector) => vector.name);
  assert.equal(new Set(names).size, names.length, "vector names are unique");
  const bySha = new Map(canonical.map((vector) => [vector.sha256, vector]));
  assert.equal(bySha.get(HASH)?.input, "Pre-launch test");
  assert.equal(
    bySha.get("c40800282fe798a0b09300185c086570d37f663345bf1151ba1d0ae17eee4f3c")?.input,
    "<h1>Title</h1><p>Body text here.</p>",
  );
  assert.equal(bySha.get("1650e8574e2f230e04a994553a262cfbceea59bed7e59b3b89c058959cc997ee")?.canonical, "Tom & Jerry <3 café");
});

for (const vector of vectors.text) {
  test(`text vector: ${vector.name}`, () => {
    if ("error" in vector) {
      throwsContentError(() => canonicaliseText(vector.input), vector.error);
      throwsContentError(() => hashText(vector.input), vector.error);
      return;
    }
    assert.equal(canonicaliseText(vector.input), vector.canonical);
    assert.equal(hashText(vector.input), vector.sha256);
    // Text that is already canonical hashes the same with or without canonicalisation.
    if (vector.input === vector.canonical) assert.equal(hashRawText(vector.input), vector.sha256);
  });
}

for (const vector of vectors.rawText) {
  test(`raw text vector: ${vector.name}`, () => {
    if ("error" in vector) throwsContentError(() => hashRawText(vector.input), vector.error);
    else assert.equal(hashRawText(vector.input), vector.sha256);
  });
}

for (const vector of vectors.files) {
  test(`file vector: ${vector.name}`, () => {
    const bytes = bytesOf(vector.bytesBase64);
    if ("error" in vector) throwsContentError(() => hashBytes(bytes), vector.error);
    else assert.equal(hashBytes(bytes), vector.sha256);
  });
}

for (const vector of vectors.hashInputs) {
  test(`hash input vector: ${vector.name}`, () => {
    if ("error" in vector) throwsContentError(() => parseContentHash(vector.input), vector.error);
    else assert.equal(parseContentHash(vector.input), vector.normalized);
  });
}

test("file bytes and the same text hash alike when the text is already canonical", () => {
  assert.equal(hashBytes(new TextEncoder().encode("Pre-launch test")), HASH);
  assert.equal(hashText("Pre-launch test"), HASH);
});

test("long inputs are handled in linear time", () => {
  const size = 200_000;
  const cases = [
    `<b>x</b>${"<".repeat(size)}`,
    `<b>x</b>${"<!--".repeat(size / 4)}`,
    `<b>x</b>${"\n \t".repeat(size / 3)}y`,
    `<b>x</b>${"<script>".repeat(size / 8)}`,
    `<b>x</b>${"<p ".repeat(size / 3)}`,
  ];
  const started = performance.now();
  for (const input of cases) hashText(input);
  assert.ok(performance.now() - started < 2000, "canonicalisation took too long");
});

test("ledger hashes", () => {
  assert.equal(toLedgerHash(HASH), `sha256:${HASH}`);
  assert.equal(toLedgerHash(HASH.toUpperCase()), `sha256:${HASH}`);
  assert.equal(toLedgerHash(`sha256:${HASH}`), `sha256:${HASH}`);
  assert.equal(fromLedgerHash(`sha256:${HASH}`), HASH);
  assert.equal(fromLedgerHash(`sha256:${HASH.toUpperCase()}`), HASH);
  throwsContentError(() => fromLedgerHash(HASH), "INVALID_HASH");
  throwsContentError(() => fromLedgerHash(`sha256:sha256:${HASH}`), "INVALID_HASH");
  throwsContentError(() => toLedgerHash("abc"), "INVALID_HASH");
  throwsContentError(() => toLedgerHash(EMPTY_CONTENT_HASH), "EMPTY_FILE");
  throwsContentError(() => fromLedgerHash(`sha256:${EMPTY_CONTENT_HASH}`), "EMPTY_FILE");
});

test("ContentError carries a stable code and a name", () => {
  const error = new ContentError("INVALID_HASH", "bad");
  assert.ok(error instanceof Error);
  assert.equal(error.name, "ContentError");
  assert.equal(error.code, "INVALID_HASH");
  assert.equal(error.message, "bad");
});

test("licences parse from API form, ledger form, any case and either separator", () => {
  const expected: Array<[string, string, string]> = [
    ["liberation_v1", "liberation_v1", "liberation_v1"],
    ["LIBERATION-V1", "liberation_v1", "liberation_v1"],
    ["cc0", "cc0", "cc0"],
    ["CC-BY", "cc-by", "cc_by"],
    ["cc_by_sa", "cc-by-sa", "cc_by_sa"],
    ["Cc-By_Nc", "cc-by-nc", "cc_by_nc"],
    ["cc-by-nc-sa", "cc-by-nc-sa", "cc_by_nc_sa"],
    ["cc-by-nd", "cc-by-nd", "cc_by_nd"],
    ["all-rights-reserved", "all-rights-reserved", "all_rights_reserved"],
    ["ALL_RIGHTS_RESERVED", "all-rights-reserved", "all_rights_reserved"],
    ["copyright", "all-rights-reserved", "all_rights_reserved"],
    ["Copyright", "all-rights-reserved", "all_rights_reserved"],
    ["public_domain", "public-domain", "public_domain"],
  ];
  for (const [input, api, ledger] of expected) {
    assert.deepEqual(parseLicence(input), { api, ledger }, input);
  }
});

test("every licence round-trips between API and ledger forms", () => {
  assert.equal(LICENCES.length, LEDGER_LICENCES.length);
  for (const ledger of LEDGER_LICENCES) {
    const api = licenceFromLedger(ledger);
    assert.ok((LICENCES as readonly string[]).includes(api));
    assert.deepEqual(parseLicence(api), { api, ledger });
  }
  assert.deepEqual(
    [...LEDGER_LICENCES],
    ["liberation_v1", "cc0", "cc_by", "cc_by_sa", "cc_by_nc", "cc_by_nc_sa", "cc_by_nd", "all_rights_reserved", "public_domain"],
  );
});

test("unknown licences are a VALIDATION_ERROR", () => {
  for (const input of ["", "mit", "cc-by-4.0", " cc0", "cc by", "constructor", "__proto__", "toString"]) {
    throwsContentError(() => parseLicence(input), "VALIDATION_ERROR");
  }
  // The ledger holds exact ledger forms only.
  for (const ledger of ["cc-by", "CC_BY", "copyright", "public-domain", "constructor"]) {
    throwsContentError(() => licenceFromLedger(ledger), "VALIDATION_ERROR");
  }
});

test("AI training policies", () => {
  assert.deepEqual([...AI_TRAINING_POLICIES], ["prohibited", "contact_required", "open"]);
  assert.equal(parseAiTrainingPolicy("prohibited"), "prohibited");
  assert.equal(parseAiTrainingPolicy("Contact-Required"), "contact_required");
  assert.equal(parseAiTrainingPolicy("CONTACT_REQUIRED"), "contact_required");
  assert.equal(parseAiTrainingPolicy("OPEN"), "open");
  for (const input of ["", "allowed", "contact required", "constructor"]) {
    throwsContentError(() => parseAiTrainingPolicy(input), "VALIDATION_ERROR");
  }
});
