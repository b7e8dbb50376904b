import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  createDeployment,
  daon,
  mode,
  nodeStatus,
  onTerminal,
  REPO,
  register,
  run,
  STORAGE_PATHS,
  sqlAt,
  type TestDeployment,
} from "./backup-fixtures.js";

const WIPE_SCRIPT = join(REPO, "scripts/operations/wipe-and-reset.sh");
const ROLLBACK_SCRIPT = join(REPO, "scripts/operations/rollback.sh");

for (const storage of STORAGE_PATHS) {
  describe(`the launch drill: wipe-and-reset, then rollback (${storage})`, () => {
    let deployment: TestDeployment;
    let oldEnv: Record<string, string>;
    let oldGenesis: string;
    const works: { contentHash: string; blockHeight: number }[] = [];
    let preWipe: string;

    before(async () => {
      deployment = await createDeployment(storage, "drill");
      await deployment.start();
      for (const text of ["The first work before launch", "The second work before launch"]) {
        works.push(await register(deployment.apiUrl, `${text} (${deployment.chainId})`));
      }
      oldEnv = deployment.env();
      oldGenesis = readFileSync(join(deployment.stateDir, "node", "config", "genesis.json"), "utf8");
    });
    after(() => deployment.destroy());

    test("a wrong confirmation word aborts with exit 1 and changes nothing", async () => {
      const { code, output } = await onTerminal(`${WIPE_SCRIPT}`, deployment.dir, [
        [/Type "WIPE-PRODUCTION" to confirm:/, () => "WIPE-PROD"],
      ]);
      assert.equal(code, 1, output);
      assert.match(output, /aborted, nothing changed/);
      assert.deepEqual(deployment.env(), oldEnv);
      assert.equal(readFileSync(join(deployment.stateDir, "node", "config", "genesis.json"), "utf8"), oldGenesis);
      const health = await (await fetch(`${deployment.apiUrl}/health`)).json();
      assert.equal(health.maintenance, false);
      assert.equal(health.chainId, deployment.chainId);
      assert.equal(
        readdirSync(join(deployment.stateDir, "backups")).some((name) => name.includes("pre-wipe")),
        false,
        "no backup was taken",
      );
    });

    test("wipe-and-reset answered as the runbook says: backed up and verified, then a fresh daon-mainnet-1 with new secrets", async () => {
      const { code, output } = await onTerminal(`${WIPE_SCRIPT}`, deployment.dir, [
        [/Type "WIPE-PRODUCTION" to confirm:/, () => "WIPE-PRODUCTION"],
        [/Type the current chain ID "([^"]+)" to confirm:/, (match) => match[1]],
        [/Select new chain ID: 1\) daon-mainnet-1 \(production\)\s+2\) daon-test-\d{8}-\d{6}\s+3\) custom/, () => "1"],
      ]);
      assert.equal(code, 0, output);
      for (let step = 1; step <= 10; step++) assert.match(output, new RegExp(`\\[${step}/10\\]`));
      assert.match(output, /ACTION REQUIRED/);

      // The old chain is in a verified pre-wipe set.
      preWipe = join(
        deployment.stateDir,
        "backups",
        readdirSync(join(deployment.stateDir, "backups")).find((n) => n.startsWith("pre-wipe-")) ?? "",
      );
      const manifest = JSON.parse(readFileSync(join(preWipe, "manifest.json"), "utf8"));
      assert.equal(manifest.chainId, deployment.chainId);
      assert.equal(manifest.registrations, 2);
      assert.equal(mode(join(preWipe, "env-backup")), 0o600);
      // Step 4's full verify left its record in the set (what preflight's backup.restorable reads back).
      const report = JSON.parse(readFileSync(join(preWipe, "verify.json"), "utf8"));
      assert.equal(report.ok, true);
      assert.equal(report.mode, "full");
      assert.deepEqual(
        report.checks.filter((c: { ok: boolean }) => !c.ok),
        [],
      );
      assert.equal(report.rows.registrations, 2);
      assert.deepEqual(
        report.checks.map((c: { id: string }) => c.id),
        [
          "manifest",
          "checksums",
          "files",
          "database.archive",
          "ledger.archive",
          "decryption",
          "database.restore",
          "ledger.restore",
          "chain.id",
        ],
      );

      // A fresh chain: daon-mainnet-1 from a low height, one chain ID everywhere.
      const env = deployment.env();
      assert.equal(env.CHAIN_ID, "daon-mainnet-1");
      assert.equal(env.NODE_ENV, "production");
      const status = await nodeStatus(deployment.rpcUrl);
      assert.equal(status.network, "daon-mainnet-1");
      assert.ok(status.height >= 2 && status.height < 200, `height ${status.height}`);
      const health = await (await fetch(`${deployment.apiUrl}/health`)).json();
      assert.equal(health.chainId, "daon-mainnet-1");
      assert.equal(health.maintenance, false);

      // New secrets and wallet, BACKUP_KEY and the settings carried over, all private.
      for (const name of ["API_KEY_SECRET", "JWT_SECRET", "ENCRYPTION_KEY", "API_MNEMONIC"]) assert.notEqual(env[name], oldEnv[name], name);
      assert.equal(env.BACKUP_KEY, oldEnv.BACKUP_KEY);
      assert.equal(env.PORT, oldEnv.PORT);
      assert.equal(env.DATABASE_URL, oldEnv.DATABASE_URL);
      const secrets = join(deployment.stateDir, "secrets");
      assert.equal(mode(secrets), 0o700);
      for (const file of ["secrets-daon-mainnet-1.env", "api-wallet-daon-mainnet-1.txt", `secrets-${deployment.chainId}.env`]) {
        assert.equal(mode(join(secrets, file)), 0o600, file);
      }
      const vault = readFileSync(join(secrets, "secrets-daon-mainnet-1.env"), "utf8");
      assert.match(vault, new RegExp(`^BACKUP_KEY=${env.BACKUP_KEY}$`, "m"));
      assert.match(readFileSync(join(secrets, "api-wallet-daon-mainnet-1.txt"), "utf8"), new RegExp(env.API_MNEMONIC));
      assert.match(output, new RegExp(`cat ${secrets}/secrets-daon-mainnet-1.env`));
      assert.equal(output.includes(env.API_MNEMONIC), false, "the new mnemonic is never printed");
      assert.equal(JSON.parse(readFileSync(join(deployment.stateDir, "run", "launch.json"), "utf8")).chainId, "daon-mainnet-1");

      if (storage === "postgres") {
        // Only DAON's objects went: the extension that lives in the same schema stays (the runbook queries it).
        assert.deepEqual(await sqlAt(env.DATABASE_URL, "select extname from pg_extension where extname = 'pg_stat_statements'"), [
          { extname: "pg_stat_statements" },
        ]);
      }

      // The old works are gone from the new chain.
      for (const work of works) assert.equal((await fetch(`${deployment.apiUrl}/api/v1/verify/${work.contentHash}`)).status, 404);
      const stats = await (await fetch(`${deployment.apiUrl}/api/v1/stats`)).json();
      assert.equal(stats.stats.totalProtected, 0);
    });

    test("rollback brings the old chain back: its chain ID, height, app hash and every work", async () => {
      assert.ok(preWipe, "the wipe ran");
      const manifest = JSON.parse(readFileSync(join(preWipe, "manifest.json"), "utf8"));
      const rolled = await run(ROLLBACK_SCRIPT, ["--yes-rollback", "--confirm-chain", "daon-mainnet-1", "--json"], deployment.dir);
      assert.equal(rolled.code, 0, rolled.stderr);
      const result = JSON.parse(rolled.stdout);
      assert.equal(result.chainId, deployment.chainId);
      assert.ok(existsSync(result.preRollbackBackup), "the mainnet chain was kept in a pre-rollback set");
      for (let step = 1; step <= 8; step++) assert.match(rolled.stderr, new RegExp(`\\[${step}/8\\]`));

      const status = await nodeStatus(deployment.rpcUrl);
      assert.equal(status.network, deployment.chainId);
      assert.ok(status.height > manifest.height);
      const block = await (await fetch(`${deployment.rpcUrl}/block?height=${manifest.height + 1}`)).json();
      assert.equal(block.result.block.header.app_hash, manifest.appHash);
      assert.equal(deployment.env().CHAIN_ID, deployment.chainId);
      assert.equal(deployment.env().API_MNEMONIC, oldEnv.API_MNEMONIC);
      for (const work of works) {
        const found = await (await fetch(`${deployment.apiUrl}/api/v1/verify/${work.contentHash}`)).json();
        assert.equal(found.isValid, true);
        assert.equal(found.blockHeight, work.blockHeight);
      }
      const health = await (await fetch(`${deployment.apiUrl}/health`)).json();
      assert.equal(health.maintenance, false);
      if (storage === "postgres") {
        assert.equal(
          (
            await sqlAt(deployment.env().DATABASE_URL, "select count(*)::int as n from pg_extension where extname = 'pg_stat_statements'")
          )[0].n,
          1,
        );
      }
      const written = await register(deployment.apiUrl, `A work after the rollback (${storage})`);
      assert.ok(written.blockHeight > manifest.height);
    });

    if (storage === "pglite") {
      test("a rollback of a chain older than --max-age is refused (exit 2, fix forward)", async () => {
        const refused = await daon(
          ["rollback", "--yes-rollback", "--confirm-chain", deployment.chainId, "--max-age", "1s"],
          deployment.dir,
        );
        assert.equal(refused.code, 2, refused.stderr);
        assert.match(refused.stderr, /fix forward/);
      });
    }
  });
}
