import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseEnv } from "node:util";
import { fingerprint } from "@daon/api";
import pg from "pg";
import { createDatabase } from "../../api/test/test-system.js";
import { initDeployment } from "../src/commands/init.js";
import { deploymentPaths, UsageError } from "../src/deployment.js";
import { DAON, daon } from "./deployment-fixture.js";

const mode = (path: string) => statSync(path).mode & 0o777;
const readSettings = (path: string) => parseEnv(readFileSync(path, "utf8")) as Record<string, string>;

describe("daon init --profile production", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "daon-init-prod-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("generates every secret in its format, writes .env, the vault files and the wallet, and prints no secret", async () => {
    const run = await daon(
      [
        "--json",
        "init",
        "--profile",
        "production",
        "--test=prod-1",
        "--state-dir",
        join(dir, "state"),
        "--public-host",
        "api.example.org",
        "--allowed-origins",
        "https://app.example.org",
        "--alert-webhook",
        "https://hooks.example.org/daon",
        "--api-replicas",
        "3",
      ],
      dir,
    );
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout);
    const env = readSettings(join(dir, ".env"));
    for (const name of ["JWT_SECRET", "API_KEY_SECRET"]) assert.match(env[name], /^[A-Za-z0-9_-]{64}$/, name);
    for (const name of ["ENCRYPTION_KEY", "BACKUP_KEY"]) assert.match(env[name], /^[0-9a-f]{64}$/, name);
    for (const name of ["POSTGRES_PASSWORD", "POSTGRES_SUPERUSER_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD"])
      assert.match(env[name], /^[A-Za-z0-9]{40}$/, name);
    const secrets = [
      "JWT_SECRET",
      "API_KEY_SECRET",
      "ENCRYPTION_KEY",
      "BACKUP_KEY",
      "POSTGRES_PASSWORD",
      "POSTGRES_SUPERUSER_PASSWORD",
      "REDIS_PASSWORD",
      "GRAFANA_ADMIN_PASSWORD",
    ];
    assert.equal(new Set(secrets.map((n) => env[n])).size, secrets.length, "all distinct");
    assert.deepEqual(
      {
        CHAIN_ID: env.CHAIN_ID,
        NODE_ENV: env.NODE_ENV,
        PUBLIC_HOST: env.PUBLIC_HOST,
        ALLOWED_ORIGINS: env.ALLOWED_ORIGINS,
        ALERT_WEBHOOK_URL: env.ALERT_WEBHOOK_URL,
        API_REPLICAS: env.API_REPLICAS,
        DB_POOL_MAX: env.DB_POOL_MAX,
        DAON_SUPERVISOR: env.DAON_SUPERVISOR,
        DAON_TOPOLOGY: env.DAON_TOPOLOGY,
        COMPOSE_PROJECT_NAME: env.COMPOSE_PROJECT_NAME,
        COMPOSE_FILE: env.COMPOSE_FILE,
      },
      {
        CHAIN_ID: "daon-test-prod-1",
        NODE_ENV: "production",
        PUBLIC_HOST: "api.example.org",
        ALLOWED_ORIGINS: "https://app.example.org",
        ALERT_WEBHOOK_URL: "https://hooks.example.org/daon",
        API_REPLICAS: "3",
        DB_POOL_MAX: "20",
        DAON_SUPERVISOR: "compose",
        DAON_TOPOLOGY: "split",
        COMPOSE_PROJECT_NAME: "daon",
        COMPOSE_FILE: "deploy/docker-compose.production.yml",
      },
    );
    assert.equal(env.DATABASE_URL, `postgres://daon_api:${env.POSTGRES_PASSWORD}@postgres:5432/daon_production`);
    assert.equal(env.REDIS_URL, `redis://:${env.REDIS_PASSWORD}@redis:6379/0`);
    assert.equal(env.API_MNEMONIC.split(" ").length, 24);

    // The runbook's own checks of .env (T-3 and T-2h).
    const text = readFileSync(join(dir, ".env"), "utf8");
    assert.doesNotMatch(text, /changeme|test-secret|password/);
    assert.deepEqual(
      text.split("\n").filter((line) => line.includes("CHAIN_ID")),
      ["CHAIN_ID=daon-test-prod-1"],
    );
    for (const line of text.split("\n").filter((l) => /^[A-Z_]+=/.test(l))) {
      const value = line.slice(line.indexOf("=") + 1);
      assert.doesNotMatch(value, /^["']/, line.split("=")[0]);
      if (secrets.includes(line.split("=")[0])) assert.equal(value.includes("="), false);
    }

    const state = join(dir, "state");
    const vault = readSettings(join(state, "secrets", "secrets-daon-test-prod-1.env"));
    for (const name of secrets) assert.equal(vault[name], env[name]);
    assert.equal(vault.CHAIN_ID, "daon-test-prod-1");
    assert.ok(Date.parse(vault.CREATED_AT) > Date.now() - 600_000);
    assert.match(
      readFileSync(join(state, "secrets", "api-wallet-daon-test-prod-1.txt"), "utf8"),
      new RegExp(`address: ${report.walletAddress}\nmnemonic: ${env.API_MNEMONIC}\n`),
    );
    for (const path of [
      join(dir, ".env"),
      join(state, "secrets", "secrets-daon-test-prod-1.env"),
      join(state, "secrets", "api-wallet-daon-test-prod-1.txt"),
    ])
      assert.equal(mode(path), 0o600, path);
    for (const path of [state, join(state, "secrets"), join(state, "backups"), join(state, "logs"), join(state, "node")])
      assert.equal(mode(path), 0o700, path);

    assert.equal(report.fingerprints.JWT_SECRET, fingerprint(env.JWT_SECRET));
    for (const name of [...secrets, "API_MNEMONIC"]) assert.equal(run.stdout.includes(env[name]), false, `${name} printed`);
    assert.match(
      report.notes.join("\n"),
      /could not create the external volumes \(.+\): before the first start run docker volume create daon_daon-blockchain-data && docker volume create daon_postgres-data/,
    );
    const audit = readFileSync(join(state, "logs", "ops-audit.log"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(audit.at(-1).command, "init");
  });

  test("refuses (exit 2) to overwrite, naming each file; --force moves them to backups/pre-init-<ts>/ first", async () => {
    const run = await daon(["init", "--profile", "production", "--test=prod-1", "--state-dir", join(dir, "state")], dir);
    assert.equal(run.code, 2);
    for (const name of [".env", "secrets-daon-test-prod-1.env", "api-wallet-daon-test-prod-1.txt", "state/node"])
      assert.ok(run.stderr.includes(name), `${name} in ${run.stderr}`);

    const before = readSettings(join(dir, ".env"));
    const deployment = deploymentPaths({ envFile: join(dir, ".env"), stateDir: join(dir, "state") });
    const result = await initDeployment(deployment, { profile: "production", test: "prod-1", force: true });
    assert.ok(result.movedTo && /backups\/pre-init-\d{8}_\d{6}$/.test(result.movedTo));
    assert.deepEqual(readdirSync(result.movedTo).sort(), [
      ".env",
      "api-wallet-daon-test-prod-1.txt",
      "node",
      "secrets-daon-test-prod-1.env",
    ]);
    assert.equal(readSettings(join(result.movedTo, ".env")).JWT_SECRET, before.JWT_SECRET);
    assert.notEqual(readSettings(join(dir, ".env")).JWT_SECRET, before.JWT_SECRET);
    assert.equal(mode(result.movedTo), 0o700);
  });
});

describe("daon init: settings carried over, and databases that already hold data", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "daon-init-keep-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("--keep-settings-from carries settings and BACKUP_KEY; every other secret, the wallet and the role password are new", async () => {
    const old = {
      CHAIN_ID: "daon-test-old",
      PUBLIC_HOST: "api.example.org",
      ALLOWED_ORIGINS: "https://app.example.org",
      DAON_SUPERVISOR: "systemd",
      DB_POOL_MAX: "30",
      BACKUP_KEY: "ab".repeat(32),
      JWT_SECRET: "x".repeat(64),
      JWT_SECRET_PREVIOUS: "y".repeat(64),
      POSTGRES_PASSWORD: "OldRolePassword0000000000000000000000000",
      DATABASE_URL: "postgres://daon_api:OldRolePassword0000000000000000000000000@db.internal:5432/daon_production",
      API_MNEMONIC: "old mnemonic",
    };
    writeFileSync(
      join(dir, "old.env"),
      Object.entries(old)
        .map(([k, v]) => `${k}=${v}`)
        .join("\n"),
    );
    const deployment = deploymentPaths({ envFile: join(dir, ".env"), stateDir: join(dir, "state") });
    const result = await initDeployment(deployment, {
      profile: "production",
      mainnet: true,
      keepSettingsFrom: join(dir, "old.env"),
      skipDatabaseCheck: true,
    });
    const env = readSettings(join(dir, ".env"));
    assert.equal(result.chainId, "daon-mainnet-1");
    assert.equal(env.NODE_ENV, "production");
    assert.equal(env.PUBLIC_HOST, "api.example.org");
    assert.equal(env.DB_POOL_MAX, "30");
    assert.equal(env.DAON_SUPERVISOR, "systemd");
    assert.equal(env.BACKUP_KEY, old.BACKUP_KEY, "old backups stay readable");
    assert.notEqual(env.JWT_SECRET, old.JWT_SECRET);
    assert.equal(env.JWT_SECRET_PREVIOUS, undefined);
    assert.notEqual(env.API_MNEMONIC, old.API_MNEMONIC);
    assert.equal(env.DATABASE_URL, `postgres://daon_api:${env.POSTGRES_PASSWORD}@db.internal:5432/daon_production`);
    assert.equal(env.COMPOSE_FILE, undefined, "systemd: no compose settings");
  });

  for (const storage of ["pglite", "postgres"] as const) {
    test(`refuses a non-empty database (${storage}), even with --force, and writes nothing`, async () => {
      const sub = join(dir, storage);
      mkdirSync(sub);
      const database = storage === "postgres" ? await createDatabase() : undefined;
      try {
        if (database) {
          const client = new pg.Client({ connectionString: database.url });
          await client.connect();
          await client.query("create table registrations (content_hash text)");
          await client.end();
          writeFileSync(join(sub, "settings.env"), `DATABASE_URL=${database.url}\nDAON_SUPERVISOR=process\n`);
        } else {
          mkdirSync(join(sub, "state", "db"), { recursive: true });
          writeFileSync(join(sub, "state", "db", "PG_VERSION"), "17\n");
        }
        const deployment = deploymentPaths({ envFile: join(sub, ".env"), stateDir: join(sub, "state") });
        await assert.rejects(
          initDeployment(deployment, {
            profile: storage === "postgres" ? "production" : "embedded",
            test: "db",
            force: true,
            keepSettingsFrom: database ? join(sub, "settings.env") : undefined,
          }),
          (error: Error) =>
            error instanceof UsageError &&
            (storage === "postgres"
              ? /non-empty database: the database postgres:\/\/.*holds 1 table\(s\) in its DAON schema/
              : /non-empty database: the embedded database .*state\/db holds data/
            ).test(error.message),
        );
        assert.equal(existsSync(join(sub, ".env")), false);
        assert.equal(existsSync(join(sub, "state", "node")), false);
      } finally {
        await database?.drop();
      }
    });
  }
});

describe("daon init on a terminal", () => {
  let dir: string;
  const session = `daon-init-${process.pid}`;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "daon-init-tty-"));
  });
  after(async () => {
    spawnSync("tmux", ["kill-session", "-t", session]);
    await rm(dir, { recursive: true, force: true });
  });

  const screen = () => spawnSync("tmux", ["capture-pane", "-p", "-t", session], { encoding: "utf8" }).stdout;
  async function waitFor(text: RegExp) {
    for (let i = 0; i < 300; i++) {
      if (text.test(screen())) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.fail(`no ${text} on the terminal:\n${screen()}`);
  }
  const keys = (...k: string[]) => spawnSync("tmux", ["send-keys", "-t", session, ...k]);

  test("asks for the chain (menu), the public host and the origins of a production deployment", async () => {
    const command = `cd ${dir} && ${process.execPath} ${DAON} init --profile production --state-dir ${join(dir, "state")}; echo EXIT=$?; sleep 30`;
    spawnSync("tmux", ["new-session", "-d", "-s", session, "-x", "160", "-y", "40", command]);
    await waitFor(/Select chain ID/);
    assert.match(screen(), /1\) daon-mainnet-1 \(production\)[\s\S]*2\) daon-test-\d{8}-\d{6}[\s\S]*3\) custom/);
    keys("3", "Enter");
    await waitFor(/Chain ID \(daon-mainnet-1 or daon-test-…\)/);
    keys("-l", "daon-test-from-the-menu");
    keys("Enter");
    await waitFor(/Public host name/);
    keys("-l", "api.example.org");
    keys("Enter");
    await waitFor(/Allowed browser origins/);
    keys("Enter"); // the default: https://<host>
    await waitFor(/EXIT=\d/);
    assert.match(screen(), /EXIT=0/);
    const env = readSettings(join(dir, ".env"));
    assert.deepEqual(
      [env.CHAIN_ID, env.PUBLIC_HOST, env.ALLOWED_ORIGINS],
      ["daon-test-from-the-menu", "api.example.org", "https://api.example.org"],
    );
  });
});
