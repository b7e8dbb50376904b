/**
 * `daon protect` and `daon verify` against a started system (pglite): a file's hash is
 * registered and its proof saved, the proof checks offline against the deployment's genesis
 * (no network: the API is stopped first), a changed proof or another validator key fails with exit 1,
 * an unknown work is "not registered" with exit 1, and bad arguments exit 2.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { startTestSystem, type TestSystem } from "../../api/test/test-system.js";

const DAON = resolve(import.meta.dirname, "../../../bin/daon.mjs");

function daon(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [DAON, ...args], {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, DAON_API_URL: "" },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

describe("daon protect and daon verify (pglite)", () => {
  let system: TestSystem;
  let dir: string;
  let genesis: string;
  const work = Buffer.concat([Buffer.from("a manuscript\n"), randomBytes(64)]);
  const hash = createHash("sha256").update(work).digest("hex");
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "daon-cli-"));
    system = await startTestSystem("pglite");
    genesis = join(system.dir, "node", "config", "genesis.json");
    await writeFile(join(dir, "manuscript.txt"), work);
  });
  after(async () => {
    await system?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("protect sends the file's hash, waits for the ledger and saves the proof; verify finds it", async () => {
    const protectedWork = await daon(
      [
        "--json",
        "protect",
        "manuscript.txt",
        "--api",
        system.apiUrl,
        "--license",
        "cc-by-nd",
        "--title",
        "Manuscript",
        "--proof",
        "proof.json",
      ],
      dir,
    );
    assert.equal(protectedWork.code, 0, protectedWork.stderr);
    const result = JSON.parse(protectedWork.stdout);
    assert.equal(result.ok, true);
    assert.equal(result.contentHash, hash);
    assert.equal(result.status, "confirmed");
    assert.equal(result.license, "cc-by-nd");
    assert.equal(result.metadata.type, "file");
    assert.equal(result.proofFile, "proof.json");
    assert.equal(JSON.parse(await readFile(join(dir, "proof.json"), "utf8")).contentHash, hash);

    const [verified, text] = await Promise.all([
      daon(["verify", "manuscript.txt", "--api", system.apiUrl], dir),
      daon(["--json", "verify", "--text", "<p>never registered anywhere</p>", "--api", system.apiUrl], dir),
    ]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, new RegExp(`registered: sha256:${hash} \\(on the ledger at height ${result.blockHeight}`));
    assert.match(verified.stdout, /licence cc-by-nd/);

    assert.equal(text.code, 1);
    assert.equal(JSON.parse(text.stdout).registered, false);
  });

  test("verify --offline checks the proof against the genesis with no network; a changed proof or another validator key fails", async () => {
    await system.api.stop(); // nothing to ask: the check must stand on the file and the genesis alone
    const bundle = JSON.parse(await readFile(join(dir, "proof.json"), "utf8"));
    bundle.record.owner = "o_someoneelsesomeoneelsesomeo";
    await writeFile(join(dir, "changed.json"), JSON.stringify(bundle));
    const [offline, changed, otherKey] = await Promise.all([
      daon(["verify", "--offline", "proof.json", "--genesis", genesis, "manuscript.txt"], dir),
      daon(["verify", "--offline", "changed.json", "--genesis", genesis], dir),
      daon(
        [
          "--json",
          "verify",
          "--offline",
          "proof.json",
          "--validator-key",
          randomBytes(32).toString("base64"),
          "--chain-id",
          system.chainId,
          "--text",
          "another work",
        ],
        dir,
      ),
    ]);
    assert.equal(offline.code, 0, offline.stderr);
    assert.match(offline.stdout, new RegExp(`proof valid: sha256:${hash} is registered on chain ${system.chainId}`));
    assert.match(offline.stdout, /licence cc_by_nd/);
    assert.equal(changed.code, 1);
    assert.match(changed.stdout, /proof INVALID: the stated record's owner is not the proved one/);
    assert.equal(otherKey.code, 1);
    assert.deepEqual((({ ok, valid, reason }) => ({ ok, valid, reason }))(JSON.parse(otherKey.stdout)), {
      ok: false,
      valid: false,
      reason: "the trusted validator did not sign this commit",
    });
  });

  test("bad arguments exit 2 with a reason", async () => {
    const [nothing, noGenesis] = await Promise.all([
      daon(["protect", "--text", "a", "--hash", "b"], dir),
      daon(["verify", "--offline", "proof.json", "--genesis", join(dir, "missing.json")], dir),
    ]);
    assert.equal(nothing.code, 2);
    assert.match(nothing.stderr, /give exactly one of/);
    assert.equal(noGenesis.code, 2);
    assert.match(noGenesis.stderr, /no genesis at/);
  });
});
