import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseEnv } from "node:util";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";

const DAON = resolve(import.meta.dirname, "../../../bin/daon.mjs");

function daon(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [DAON, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("close", (code) => done({ code, stdout, stderr }));
  });
}

const mode = (path: string) => statSync(path).mode & 0o777;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  const { port } = server.address() as { port: number };
  await new Promise((closed) => server.close(closed));
  return port;
}

describe("daon init", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "daon-init-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("creates keys, genesis, wallet and .env with private modes, and says what it made", async () => {
    const result = await daon(["init", "--test=ci-1", "--json"], dir);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.ok, true);
    assert.equal(report.chainId, "daon-test-ci-1");

    const state = join(dir, "data");
    const walletFile = join(state, "secrets", "api-wallet-daon-test-ci-1.txt");
    for (const path of [state, join(state, "secrets"), join(state, "node"), join(state, "node", "config"), join(state, "node", "data")])
      assert.equal(mode(path), 0o700, path);
    for (const path of [
      join(dir, ".env"),
      walletFile,
      join(state, "node", "config", "priv_validator_key.json"),
      join(state, "node", "config", "node_key.json"),
    ]) {
      assert.equal(mode(path), 0o600, path);
    }

    const genesis = JSON.parse(readFileSync(join(state, "node", "config", "genesis.json"), "utf8"));
    assert.equal(genesis.chain_id, "daon-test-ci-1");
    assert.deepEqual(genesis.app_state.auth.accounts, [{ address: report.walletAddress }]);
    assert.equal(genesis.validators[0].address, report.validatorAddress);

    const mnemonic = /mnemonic: (.+)/.exec(readFileSync(walletFile, "utf8"))?.[1] ?? "";
    assert.equal(mnemonic.split(" ").length, 24);
    const wallet = await DirectSecp256k1HdWallet.fromMnemonic(mnemonic, { prefix: "daon" });
    assert.equal((await wallet.getAccounts())[0].address, report.walletAddress);

    const env = parseEnv(readFileSync(join(dir, ".env"), "utf8"));
    assert.equal(env.CHAIN_ID, "daon-test-ci-1");
    assert.equal(env.NODE_ENV, "development");
    assert.equal(env.API_MNEMONIC, mnemonic);
    assert.equal(result.stdout.includes(mnemonic), false, "the mnemonic is never printed");
  });

  test("refuses to overwrite an existing deployment, naming what exists, and changes nothing", async () => {
    const genesisBefore = readFileSync(join(dir, "data", "node", "config", "genesis.json"), "utf8");
    const result = await daon(["init", "--test=ci-2"], dir);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /refusing to overwrite.*\.env/);
    assert.equal(readFileSync(join(dir, "data", "node", "config", "genesis.json"), "utf8"), genesisBefore);
  });

  test("rejects an invalid chain ID and conflicting chain flags with exit status 2", async () => {
    const other = await mkdtemp(join(tmpdir(), "daon-init-"));
    try {
      const invalid = await daon(["init", "--chain-id", "Mainnet!"], other);
      assert.equal(invalid.code, 2);
      assert.match(invalid.stderr, /chain ID "Mainnet!" must be/);
      const both = await daon(["init", "--mainnet", "--test"], other);
      assert.equal(both.code, 2);
      assert.match(both.stderr, /choose one of/);
      assert.equal(existsSync(join(other, ".env")), false);

      // A production init defaults to /opt/daon (ops.md §0); a test keeps its state in its own directory.
      const mainnet = await daon(["init", "--mainnet", "--state-dir", join(other, "data"), "--json"], other);
      assert.equal(mainnet.code, 0, mainnet.stderr);
      const env = parseEnv(readFileSync(join(other, ".env"), "utf8"));
      assert.equal(env.CHAIN_ID, "daon-mainnet-1");
      assert.equal(env.NODE_ENV, "production");
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

describe("daon up on a fresh directory", () => {
  let dir: string;
  let child: ChildProcess | undefined;
  after(async () => {
    child?.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });

  test("creates a test deployment, serves the runbook's status query, and stops cleanly on SIGTERM", async () => {
    dir = await mkdtemp(join(tmpdir(), "daon-up-"));
    const port = await freePort();
    const apiPort = await freePort();
    child = spawn(process.execPath, [DAON, "up", "--rpc-laddr", `tcp://127.0.0.1:${port}`], {
      cwd: dir,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((done) => child?.on("exit", (code) => done(code)));

    let height = 0;
    for (let i = 0; i < 300 && height < 1; i++) {
      await new Promise((r) => setTimeout(r, 100));
      height = await fetch(`http://127.0.0.1:${port}/status`)
        .then((r) => r.json())
        .then((body) => Number(body.result.sync_info.latest_block_height))
        .catch(() => 0);
    }
    assert.ok(height >= 1, stderr);
    // The node answers before the API is up; SIGTERM is for a system that said it is ready.
    for (let i = 0; i < 300 && !/ready: API/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(stderr, /ready: API http:\/\/127\.0\.0\.1:\d+/);
    assert.match(stderr, /creating an embedded test deployment/);
    const env = parseEnv(readFileSync(join(dir, ".env"), "utf8"));
    const status = await (await fetch(`http://127.0.0.1:${port}/status`)).json();
    assert.equal(status.result.node_info.network, env.CHAIN_ID);
    assert.match(env.CHAIN_ID ?? "", /^daon-test-\d{8}-\d{6}$/);

    child.kill("SIGTERM");
    assert.equal(await exited, 0);
    const signed = JSON.parse(readFileSync(join(dir, "data", "node", "data", "priv_validator_state.json"), "utf8"));
    assert.ok(Number(signed.height) >= height);
  });
});
