import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { initHome, LedgerService } from "@daon/chain";
import { parse } from "yaml";
import { DEPLOY, eventually, exposedNames, freePort, REPO, run } from "./deploy-system.js";

const DAON = join(REPO, "bin/daon.mjs");

interface ComposeService {
  image: string;
  user?: string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] };
  stop_grace_period?: string;
  logging?: { driver: string; options: Record<string, string> };
  deploy?: { replicas?: string | number; resources?: { limits?: { memory?: string; cpus?: string } } };
}

interface Compose {
  name: string;
  services: Record<string, ComposeService>;
  volumes: Record<string, { external?: boolean; name?: string }>;
}

const readCompose = async (): Promise<Compose> =>
  parse(await readFile(join(DEPLOY, "docker-compose.production.yml"), "utf8"), { merge: true }) as Compose;

/** A systemd unit's `Key=value` lines by section (repeated keys keep every value). */
async function readUnit(name: string): Promise<Record<string, Record<string, string[]>>> {
  const unit: Record<string, Record<string, string[]>> = {};
  let section = "";
  for (const line of (await readFile(join(DEPLOY, "systemd", name), "utf8")).split("\n")) {
    const header = /^\[(\w+)\]$/.exec(line.trim());
    if (header) {
      section = header[1];
      unit[section] = {};
    } else if (/^[A-Za-z]+=/.test(line)) {
      const [key, ...value] = line.split("=");
      unit[section][key] ??= [];
      unit[section][key].push(value.join("="));
    }
  }
  return unit;
}

const seconds = (duration: string) => {
  const match = /^(\d+)(s|min|m)?$/.exec(duration);
  assert.ok(match, `duration ${duration}`);
  return Number(match[1]) * (match[2] === "m" || match[2] === "min" ? 60 : 1);
};

/** The `daon …` arguments of a unit command line (`/usr/local/bin/daon node --home …` → `["node", "--home", …]`). */
const daonArgs = (command: string) => {
  const words = command.trim().split(/\s+/);
  assert.equal(words[0], "/usr/local/bin/daon", command);
  return words.slice(1);
};

describe("deploy/: compose file, Dockerfile and systemd units", () => {
  test("the compose file describes the stack of ops.md §12 with pinned images, health checks, limits and capped logs", async () => {
    const compose = await readCompose();
    assert.equal(compose.name, "daon");
    assert.deepEqual(Object.keys(compose.services).sort(), [
      "alertmanager",
      "caddy",
      "daon-api",
      "daon-blockchain",
      "grafana",
      "node-exporter",
      "postgres",
      "prometheus",
      "redis",
    ]);
    // Images that already run as a non-root user by themselves.
    const nonRootImages = /^(prom\/prometheus|prom\/node-exporter|prom\/alertmanager|grafana\/grafana-oss):/;
    for (const [name, service] of Object.entries(compose.services)) {
      if (!name.startsWith("daon-"))
        assert.match(service.image, /:[0-9]+\.[0-9]+(\.[0-9]+)?(-[a-z0-9]+)?$|:v[0-9]+\.[0-9]+\.[0-9]+$/, `${name} pins its image`);
      assert.ok(service.healthcheck?.test?.length, `${name} has a health check`);
      assert.ok(service.stop_grace_period, `${name} has a stop timeout`);
      assert.equal(service.logging?.driver, "json-file", `${name} logs are capped`);
      assert.ok(
        service.logging?.options["max-size"] && service.logging.options["max-file"],
        'service.logging?.options["max-size"] && service.logging.options["max-file"]',
      );
      assert.ok(service.deploy?.resources?.limits?.memory, `${name} has a memory limit`);
      assert.ok(service.user || nonRootImages.test(service.image), `${name} runs as a non-root user`);
      assert.notEqual(service.user, "root");
      assert.notEqual(service.user, "0");
    }
    const api = compose.services["daon-api"];
    const node = compose.services["daon-blockchain"];
    assert.equal(api.deploy?.replicas, `\${API_REPLICAS:-2}`);
    for (const service of [api, node]) {
      assert.deepEqual(service.deploy?.resources?.limits, { memory: "1G", cpus: "1.0" });
      assert.ok(service.volumes?.includes("../.env:/opt/daon-source/.env:ro"), ".env mounted read-only");
      assert.ok(seconds(service.stop_grace_period!) > 30, "above the 5 s drain + 25 s shutdown");
    }

    // Public: 80 and 443 only; everything else on loopback.
    const published = Object.values(compose.services).flatMap((s) => s.ports ?? []);
    const publicPorts = published.filter((p) => !p.startsWith("127.0.0.1:")).map((p) => p.split(":")[0]);
    assert.deepEqual([...new Set(publicPorts)].sort(), ["443", "80"]);
    const loopback = published.filter((p) => p.startsWith("127.0.0.1:")).map((p) => p.split(":")[1]);
    assert.deepEqual(loopback.sort(), ["26657", "3000", "3001", "9090"]);

    // Data volumes are external (made by `daon init`), so `down -v` cannot delete them.
    for (const [name, volume] of Object.entries(compose.volumes)) {
      assert.equal(volume.external, true, name);
      assert.equal(volume.name, `daon_${name}`);
    }
    assert.ok(
      compose.volumes["daon-blockchain-data"] && compose.volumes["postgres-data"],
      'compose.volumes["daon-blockchain-data"] && compose.volumes["postgres-data"]',
    );

    // Redis lets the runbook's `redis-cli FLUSHDB` authenticate; PostgreSQL has pg_stat_statements.
    assert.ok(compose.services.redis.environment?.REDISCLI_AUTH, "compose.services.redis.environment?.REDISCLI_AUTH");
    assert.ok(
      compose.services.postgres.command?.includes("shared_preload_libraries=pg_stat_statements"),
      'compose.services.postgres.command?.includes("shared_preload_libraries=pg_stat_statements")',
    );
    const init = await readFile(join(DEPLOY, "postgres/init-daon.sh"), "utf8");
    for (const needed of ["daon_api", "daon_production", "pg_stat_statements"]) assert.ok(init.includes(needed), needed);
    for (const script of ["postgres/init-daon.sh", "postgres/entrypoint.sh"]) {
      const syntax = await run("bash", ["-n", join(DEPLOY, script)]);
      assert.equal(syntax.code, 0, syntax.stderr);
    }
  });

  test("the Dockerfile builds one non-root image whose entrypoint is daon, as compose and systemd run it", async () => {
    const dockerfile = await readFile(join(DEPLOY, "Dockerfile"), "utf8");
    const instructions = dockerfile
      .replace(/\\\n/g, " ")
      .split("\n")
      .filter((line) => line.trim() && !line.trim().startsWith("#"));
    const froms = instructions.filter((line) => line.startsWith("FROM "));
    assert.ok(
      froms.every((line) => /FROM node:\d+\.\d+\.\d+-bookworm-slim/.test(line)),
      "froms.every((line) => /FROM node:\\d+\\.\\d+\\.\\d+-bookworm-slim/.test(line))",
    );
    const finalStage = instructions.slice(instructions.lastIndexOf(froms.at(-1)!));
    const user = finalStage.filter((line) => line.startsWith("USER ")).at(-1);
    assert.equal(user, "USER 10001:10001");
    const entrypoint = JSON.parse(finalStage.find((line) => line.startsWith("ENTRYPOINT "))!.slice("ENTRYPOINT ".length));
    assert.equal(entrypoint.at(-1), "/usr/local/bin/daon");
    assert.ok(
      finalStage.some((line) => line.includes("ln -s /opt/daon-source/bin/daon.mjs /usr/local/bin/daon")),
      'finalStage.some((line) => line.includes("ln -s /opt/daon-source/bin/daon.mjs /usr/local/bin/daon"))',
    );

    const compose = await readCompose();
    for (const name of ["daon-api", "daon-blockchain"]) {
      assert.equal(compose.services[name].user, "10001:10001");
      assert.equal(compose.services[name].image, `\${DAON_IMAGE:-daon:local}`);
    }
    const ignore = await readFile(join(DEPLOY, "Dockerfile.dockerignore"), "utf8");
    for (const kept of ["**/.env", "data", "**/node_modules"]) assert.ok(ignore.split("\n").includes(kept), kept);
  });

  test("systemd units run the same commands, ports, health checks and stop timeouts as the compose services", async () => {
    const compose = await readCompose();
    const composeNode = compose.services["daon-blockchain"];
    const composeApi = compose.services["daon-api"];
    const node = await readUnit("daon-node.service");
    const api = await readUnit("daon-api@.service");
    const single = await readUnit("daon.service");

    // Ledger node: same command and ports (RPC 26657, metrics 26660); loopback on the host.
    const nodeArgs = daonArgs(node.Service.ExecStart[0]);
    const flag = (args: string[], name: string) => args[args.indexOf(name) + 1];
    assert.equal(nodeArgs[0], composeNode.command![0]);
    for (const name of ["--home", "--rpc-laddr", "--prometheus-laddr"]) {
      assert.ok(composeNode.command!.includes(name), name);
      assert.equal(flag(nodeArgs, name).split(":").at(-1), flag(composeNode.command!, name).split(":").at(-1), name);
    }
    assert.equal(flag(nodeArgs, "--home"), "/opt/daon/node");
    assert.equal(flag(nodeArgs, "--rpc-laddr"), "tcp://127.0.0.1:26657");
    assert.equal(flag(nodeArgs, "--prometheus-laddr"), "127.0.0.1:26660");
    assert.ok(
      composeNode.volumes?.includes("daon-blockchain-data:/opt/daon/node"),
      'composeNode.volumes?.includes("daon-blockchain-data:/opt/daon/node")',
    );
    assert.ok(composeNode.ports?.includes("127.0.0.1:26657:26657"), 'composeNode.ports?.includes("127.0.0.1:26657:26657")');

    // API: one instance per port, the same command as a compose replica.
    assert.deepEqual(daonArgs(api.Service.ExecStart[0]), ["api", "--port", "%i"]);
    assert.deepEqual(composeApi.command, ["api", "--port", composeApi.environment!.PORT]);
    assert.ok(
      api.Service.Environment.includes("PORT=%i") && api.Service.Environment.includes("HOST=127.0.0.1"),
      'api.Service.Environment.includes("PORT=%i") && api.Service.Environment.includes("HOST=127.0.0.1")',
    );

    // Health checks: `daon healthcheck node|api`, what Docker runs.
    assert.deepEqual(composeNode.healthcheck!.test, ["CMD", "daon", "healthcheck", "node"]);
    assert.deepEqual(composeApi.healthcheck!.test, ["CMD", "daon", "healthcheck", "api"]);
    assert.match(node.Service.ExecStartPost[0], /\/usr\/local\/bin\/daon healthcheck node &&/);
    assert.match(api.Service.ExecStartPost[0], /\/usr\/local\/bin\/daon healthcheck api &&/);
    assert.match(single.Service.ExecStartPost[0], /daon healthcheck api && \/usr\/local\/bin\/daon healthcheck node/);

    // Stop timeouts: SIGTERM, and as long as compose's stop_grace_period.
    for (const [unit, service] of [
      [node, composeNode],
      [api, composeApi],
      [single, composeApi],
    ] as const) {
      assert.deepEqual(unit.Service.KillSignal, ["SIGTERM"]);
      assert.equal(seconds(unit.Service.TimeoutStopSec[0]), seconds(service.stop_grace_period!));
      assert.deepEqual(unit.Service.User, ["daon"]);
      assert.deepEqual(unit.Service.WorkingDirectory, ["/opt/daon-source"]);
    }
    assert.deepEqual(api.Service.ExecReload, ["/bin/kill -HUP $MAINPID"]);

    // The single-process unit: `daon up` with the node's ports, the API on the first instance port.
    const upArgs = daonArgs(single.Service.ExecStart[0]);
    assert.equal(upArgs[0], "up");
    assert.equal(flag(upArgs, "--rpc-laddr"), flag(nodeArgs, "--rpc-laddr"));
    assert.equal(flag(upArgs, "--prometheus-laddr"), flag(nodeArgs, "--prometheus-laddr"));

    // Backups: daily, catching up after downtime.
    const backup = await readUnit("daon-backup.service");
    const timer = await readUnit("daon-backup.timer");
    assert.deepEqual(daonArgs(backup.Service.ExecStart[0]), ["backup", "--kind", "scheduled"]);
    assert.deepEqual(backup.Service.Type, ["oneshot"]);
    assert.deepEqual(timer.Timer.Unit, ["daon-backup.service"]);
    assert.deepEqual(timer.Timer.Persistent, ["true"]);
    assert.match(timer.Timer.OnCalendar[0], /^\*-\*-\* \d\d:\d\d:00 UTC$/);
  });

  test("Grafana provisions the Prometheus data source and the DAON overview dashboard with the panels of ops.md §12", async () => {
    const datasources = parse(await readFile(join(DEPLOY, "grafana/provisioning/datasources/prometheus.yml"), "utf8"));
    const providers = parse(await readFile(join(DEPLOY, "grafana/provisioning/dashboards/daon.yml"), "utf8"));
    const dashboard = JSON.parse(await readFile(join(DEPLOY, "grafana/dashboards/daon-overview.json"), "utf8")) as {
      uid: string;
      panels: { type: string; title: string; datasource?: { uid: string }; targets?: { expr: string; datasource: { uid: string } }[] }[];
    };
    const [source] = datasources.datasources;
    assert.equal(source.type, "prometheus");
    const compose = await readCompose();
    const grafana = compose.services.grafana;
    // Grafana expands the variable from its environment, which compose sets.
    assert.equal(source.url, `\${DAON_PROMETHEUS_URL}`);
    assert.equal(grafana.environment!.DAON_PROMETHEUS_URL, "http://prometheus:9090");
    assert.ok(
      grafana.volumes!.includes(`./grafana/dashboards:${providers.providers[0].options.path}:ro`),
      "the dashboards are mounted where the provider reads them",
    );
    assert.ok(
      grafana.volumes!.includes("./grafana/provisioning:/etc/grafana/provisioning:ro"),
      'grafana.volumes!.includes("./grafana/provisioning:/etc/grafana/provisioning:ro")',
    );
    const panels = dashboard.panels.filter((p) => p.type !== "row");
    for (const panel of panels) {
      assert.equal(panel.datasource?.uid, source.uid, panel.title);
      assert.ok(panel.targets?.length && panel.targets.every((t) => t.expr && t.datasource.uid === source.uid), panel.title);
    }
    const titles = panels.map((p) => p.title.toLowerCase()).join(" | ");
    for (const wanted of [
      "request rate",
      "error rate",
      "p50 / p95 / p99",
      "database connections",
      "cpu",
      "memory",
      "block height",
      "block interval",
      "mempool",
      "outbox",
      "webhooks",
      "backup age",
      "disk",
    ])
      assert.ok(titles.includes(wanted), `a panel for ${wanted}`);
  });

  test("the instances Caddy balances over are the ones Prometheus scrapes and systemd starts", async () => {
    const upstreams = async (file: string) =>
      (await readFile(join(DEPLOY, "caddy", file), "utf8"))
        .split("\n")
        .filter((line) => line.startsWith("to "))
        .flatMap((line) => line.slice(3).trim().split(/\s+/));
    const targets = async (file: string) =>
      (parse(await readFile(join(DEPLOY, "prometheus", file), "utf8")) as { targets: string[] }[]).flatMap((group) => group.targets);
    const compose = await readCompose();
    const apiPort = compose.services["daon-api"].environment!.PORT;
    const composeUpstreams = await upstreams("upstreams.compose.caddy");
    assert.deepEqual(
      composeUpstreams,
      ["daon-daon-api-1", "daon-daon-api-2"].map((n) => `${n}:${apiPort}`),
    );
    assert.deepEqual(await targets("targets/daon-api.yml"), composeUpstreams);
    const hostUpstreams = await upstreams("upstreams.host.caddy");
    assert.deepEqual(hostUpstreams, ["127.0.0.1:3101", "127.0.0.1:3102"]);
    assert.deepEqual(await targets("targets-host/daon-api.yml"), hostUpstreams);
    // daon.service (single process) listens on the first of them.
    assert.ok(
      (await readUnit("daon.service")).Service.Environment.includes(`PORT=${hostUpstreams[0].split(":")[1]}`),
      "daon.service listens on the first upstream's port",
    );
    assert.deepEqual(await targets("targets/daon-node.yml"), ["daon-blockchain:26660"]);
    assert.deepEqual(await targets("targets-host/daon-node.yml"), ["127.0.0.1:26660"]);
  });

  test("systemd-analyze verify accepts every unit, and rejects a broken one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "daon-units-"));
    try {
      // The units name /usr/local/bin/daon, which this machine need not have: point them at a stand-in.
      const daon = join(dir, "daon");
      await writeFile(daon, "#!/bin/sh\n");
      await chmod(daon, 0o755);
      const units = await readdir(join(DEPLOY, "systemd"));
      for (const unit of units)
        await writeFile(join(dir, unit), (await readFile(join(DEPLOY, "systemd", unit), "utf8")).replaceAll("/usr/local/bin/daon", daon));
      const names = units.map((u) => (u === "daon-api@.service" ? "daon-api@3101.service" : u));
      const verified = await run("systemd-analyze", ["verify", "--man=no", ...names], { cwd: dir });
      assert.equal(verified.code, 0, verified.stderr);
      assert.equal(
        verified.stderr
          .split("\n")
          .filter((line) => line.includes(dir))
          .join("\n"),
        "",
      );

      const broken = (await readFile(join(dir, "daon-node.service"), "utf8")).replace("KillSignal=SIGTERM", "KillSignal=SIGTERMINATE");
      await writeFile(join(dir, "daon-broken.service"), broken);
      const refused = await run("systemd-analyze", ["verify", "--man=no", "daon-broken.service"], { cwd: dir });
      assert.match(refused.stderr, /Failed to parse signal name/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("config.toml's [instrumentation] turns the node's metrics on, off by default as in CometBFT", async () => {
    const dir = await mkdtemp(join(tmpdir(), "daon-instrumentation-"));
    const wallet = await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" });
    const [{ address }] = await wallet.getAccounts();
    const home = join(dir, "node");
    await initHome({ home, chainId: "daon-test-instrumentation", accounts: [address] });
    const config = await readFile(join(home, "config/config.toml"), "utf8");
    assert.match(config, /\[instrumentation\]\nprometheus = false\nprometheus_listen_addr = ":26660"\nnamespace = "cometbft"/);
    const off = await LedgerService.start(home, { rpcListen: "tcp://127.0.0.1:0" });
    assert.equal(off.metricsUrl, undefined);
    await off.stop();
    const port = await freePort();
    await writeFile(
      join(home, "config/config.toml"),
      config.replace("prometheus = false", "prometheus = true").replace('":26660"', `"127.0.0.1:${port}"`),
    );
    const on = await LedgerService.start(home, { rpcListen: "tcp://127.0.0.1:0" });
    try {
      assert.equal(on.metricsUrl, `http://127.0.0.1:${port}/metrics`);
      const text = await (await fetch(on.metricsUrl!)).text();
      assert.match(text, /^cometbft_mempool_size\{chain_id="daon-test-instrumentation"\} 0$/m);
    } finally {
      await on.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("the node command of the units serves CometBFT metrics on its --prometheus-laddr", async () => {
    const dir = await mkdtemp(join(tmpdir(), "daon-node-unit-"));
    const wallet = await DirectSecp256k1HdWallet.generate(24, { prefix: "daon" });
    const [{ address }] = await wallet.getAccounts();
    await initHome({ home: join(dir, "node"), chainId: "daon-test-units", accounts: [address] });
    const [rpcPort, metricsPort] = [await freePort(), await freePort()];
    // daon-node.service's ExecStart, with this test's home and ports.
    const unit = await readUnit("daon-node.service");
    const args = daonArgs(unit.Service.ExecStart[0]).map((arg) =>
      arg.replace("/opt/daon/node", join(dir, "node")).replace(":26657", `:${rpcPort}`).replace(":26660", `:${metricsPort}`),
    );
    const child = spawn(process.execPath, [DAON, ...args], { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk) => (stderr += chunk));
    try {
      const metrics = await eventually("the node's metrics", async () => {
        const response = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
        const text = await response.text();
        return /cometbft_consensus_height\{chain_id="daon-test-units"\} [2-9]/.test(text) ? text : undefined;
      });
      for (const name of [
        "cometbft_consensus_height",
        "cometbft_mempool_size",
        "cometbft_consensus_block_interval_seconds_bucket",
        "cometbft_consensus_num_txs",
        "cometbft_consensus_total_txs",
      ])
        assert.ok(exposedNames(metrics).has(name), name);
      assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/`)).status, 404);
      // `daon healthcheck node`, as the unit's ExecStartPost runs it, against this node.
      const health = await run(process.execPath, [DAON, "healthcheck", "node", "--url", `http://127.0.0.1:${rpcPort}`], { cwd: dir });
      assert.equal(health.code, 0, health.stdout + health.stderr);
      assert.match(stderr, new RegExp(`metrics http://127.0.0.1:${metricsPort}/metrics`));
    } finally {
      child.kill("SIGTERM");
      await new Promise((done) => child.once("close", done));
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** Every `daon <command> --flag` the compose file and the units run, by command. */
  async function daonFlags(): Promise<Map<string, Set<string>>> {
    const compose = await readCompose();
    const commands: string[][] = [compose.services["daon-api"].command!, compose.services["daon-blockchain"].command!];
    for (const unit of await readdir(join(DEPLOY, "systemd"))) {
      const parsed = await readUnit(unit);
      for (const exec of parsed.Service?.ExecStart ?? []) commands.push(daonArgs(exec));
    }
    const flags = new Map<string, Set<string>>();
    for (const [command, ...args] of commands) {
      const known = flags.get(command) ?? new Set();
      for (const arg of args) if (arg.startsWith("--")) known.add(arg);
      flags.set(command, known);
    }
    return flags;
  }

  const usage = (command: string) => new RegExp(`^Usage: daon ${command} `, "m");

  test("the CLI accepts every flag the compose file and the units pass to node, api and up", async () => {
    const flags = await daonFlags();
    assert.deepEqual([...flags.keys()].sort(), ["api", "backup", "node", "up"]);
    const checked = ["api", "node", "up"];
    const helps = await Promise.all(checked.map((command) => run(process.execPath, [DAON, command, "--help"])));
    for (const [index, command] of checked.entries()) {
      const help = helps[index];
      assert.equal(help.code, 0, `daon ${command} --help: ${help.stderr}`);
      assert.match(help.stdout, usage(command), `daon ${command} exists`);
      for (const flag of flags.get(command)!) assert.ok(help.stdout.includes(flag), `daon ${command} has ${flag}`);
    }
  });

  test("the CLI accepts the backup unit's command", async (t) => {
    const used = (await daonFlags()).get("backup")!;
    const help = await run(process.execPath, [DAON, "backup", "--help"]);
    // `daon backup` (ops.md §5) is being built alongside; until it lands its unit's flags cannot be checked.
    if (!usage("backup").test(help.stdout)) {
      t.todo("daon backup is not registered yet: daon-backup.service runs `daon backup --kind scheduled`");
      return;
    }
    for (const flag of used) assert.ok(help.stdout.includes(flag), `daon backup has ${flag}`);
  });
});

describe("repository: no tool deletes volumes or by pattern", () => {
  test("no source, script or deploy file runs `down -v`, `docker volume rm` or a pattern deletion", async () => {
    const roots = ["packages", "bin", "deploy", "scripts", ".ci"].map((dir) => join(REPO, dir));
    const files: string[] = [];
    const walk = async (dir: string) => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) {
          if (!["node_modules", "test", "dist"].includes(entry.name)) await walk(path);
        } else if (!entry.name.endsWith(".md")) files.push(path);
      }
    };
    for (const root of roots) await walk(root);
    assert.ok(
      files.some((f) => f.endsWith("docker-compose.production.yml")) && files.some((f) => f.endsWith("main.ts")),
      'files.some((f) => f.endsWith("docker-compose.production.yml")) && files.some((f) => f.endsWith("main.ts"))',
    );
    const forbidden: [string, RegExp][] = [
      ["docker compose down -v", /\bdown\s+(?:[^\n]*\s)?(?:-v\b|--volumes\b)/],
      ["docker volume rm / prune", /\bvolume\s+(?:rm|remove|prune)\b/],
      ["docker system prune", /\bsystem\s+prune\b/],
      ["rm with a wildcard", /\brm\s+(?:-[a-zA-Z]+\s+)*[^\n;|&]*\*/],
      ["find -delete", /\bfind\b[^\n]*\s-delete\b/],
      ["rimraf/glob deletion", /\b(?:rimraf|deleteAsync|del)\s*\([^)]*\*/],
    ];
    const found: string[] = [];
    for (const file of files) {
      // Commands, not comments that name what must never run.
      const code = (await readFile(file, "utf8"))
        .split("\n")
        .filter((line) => !/^\s*(#|\/\/|\/\*|\*)/.test(line))
        .map((line) => line.replace(/\s(#|\/\/)\s.*$/, ""))
        .join("\n");
      for (const [what, pattern] of forbidden) if (pattern.test(code)) found.push(`${relative(REPO, file)}: ${what}`);
    }
    // The check itself finds what it looks for.
    const probe = "set -e\ndocker compose down -v\nrm -rf /opt/daon/backups/*\n";
    assert.equal(forbidden.filter(([, pattern]) => pattern.test(probe)).length, 2);
    assert.deepEqual(found, []);
  });
});
