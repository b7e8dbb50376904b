import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { cp, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { DEPLOY, type DeploySystem, eventually, exposedNames, freePort, metricNamesIn, run, startDeploySystem } from "./deploy-system.js";

const PROMETHEUS_DIR = join(DEPLOY, "prometheus");

describe("deploy/prometheus: promtool", () => {
  test("promtool check config and check rules pass on the shipped files", async () => {
    const config = await run("promtool", ["check", "config", "prometheus.yml"], { cwd: PROMETHEUS_DIR });
    assert.equal(config.code, 0, config.stdout + config.stderr);
    assert.match(config.stdout, /SUCCESS: prometheus.yml is valid/);
    const rules = await run("promtool", ["check", "rules", "rules/daon.yml"], { cwd: PROMETHEUS_DIR });
    assert.equal(rules.code, 0, rules.stdout + rules.stderr);
    assert.match(rules.stdout, /SUCCESS: 15 rules found/);
  });

  test("promtool test rules: every alert fires, and stays silent without traffic, under the threshold and shorter than `for`", async () => {
    const files = (await readdir(join(PROMETHEUS_DIR, "tests"))).filter((f) => f.endsWith(".yml"));
    const result = await run("promtool", ["test", "rules", ...files.map((f) => join("tests", f))], { cwd: PROMETHEUS_DIR });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.equal(result.stdout.match(/SUCCESS/g)?.length, files.length);

    // Each alert of ops.md §12 has a case where it fires and one where it is expected silent.
    const rules = parse(await readFile(join(PROMETHEUS_DIR, "rules/daon.yml"), "utf8")) as {
      groups: { rules: { alert: string }[] }[];
    };
    const alerts = new Set(rules.groups.flatMap((g) => g.rules.map((r) => r.alert)));
    assert.deepEqual(
      [...alerts].sort(),
      [
        "DaonApiDown",
        "DaonBackupStale",
        "DaonBlocksStalled",
        "DaonErrorRateHigh",
        "DaonErrorRateRollback",
        "DaonLatencyP95Critical",
        "DaonLatencyP95High",
        "DaonNodeDown",
        "DaonOutboxGrowing",
        "DaonOutboxStuck",
        "DaonWebhooksFailing",
        "HostCpuHigh",
        "HostDiskFilling",
        "HostMemoryHigh",
      ].sort(),
    );
    const firing = new Set<string>();
    const silent = new Set<string>();
    for (const file of files) {
      const suite = parse(await readFile(join(PROMETHEUS_DIR, "tests", file), "utf8")) as {
        tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
      };
      for (const t of suite.tests)
        for (const check of t.alert_rule_test) (check.exp_alerts.length > 0 ? firing : silent).add(check.alertname);
    }
    for (const alert of alerts) {
      assert.ok(firing.has(alert), `${alert} has no case where it fires`);
      assert.ok(silent.has(alert), `${alert} has no case where it stays silent`);
    }
  });

  test("a broken rule file fails promtool check and a wrong expectation fails promtool test", async () => {
    const dir = await mkdtemp(join(tmpdir(), "daon-promtool-"));
    try {
      await cp(join(PROMETHEUS_DIR, "rules"), join(dir, "rules"), { recursive: true });
      await cp(join(PROMETHEUS_DIR, "tests"), join(dir, "tests"), { recursive: true });
      const original = await readFile(join(dir, "rules/daon.yml"), "utf8");
      await writeFile(join(dir, "rules/daon.yml"), original.replace("> 0.05", "> > 0.05"));
      const broken = await run("promtool", ["check", "rules", "rules/daon.yml"], { cwd: dir });
      assert.equal(broken.code, 1);
      assert.match(broken.stdout + broken.stderr, /FAILED/);

      // A threshold moved from 5 % to 15 % no longer fires at 10 % errors: the rule tests catch it.
      await writeFile(join(dir, "rules/daon.yml"), original.replace("> 0.05", "> 0.15"));
      const moved = await run("promtool", ["test", "rules", "tests/requests.yml"], { cwd: dir });
      assert.equal(moved.code, 1);
      assert.match(moved.stdout + moved.stderr, /alertname: DaonErrorRateHigh/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("alertmanager.yml routes every alert to the receiver init configures", async () => {
    const config = parse(await readFile(join(DEPLOY, "alertmanager/alertmanager.yml"), "utf8"));
    assert.equal(config.route.receiver, "daon-operators");
    assert.deepEqual(
      config.receivers.map((r: { name: string }) => r.name),
      ["daon-operators"],
    );
    assert.equal(config.receivers[0].webhook_configs[0].url_file, "/tmp/alert-webhook-url");
    // The compose service writes that file from ALERT_WEBHOOK_URL (`daon init --alert-webhook`) before it starts.
    const compose = parse(await readFile(join(DEPLOY, "docker-compose.production.yml"), "utf8"), { merge: true });
    const alertmanager = compose.services.alertmanager;
    assert.match(alertmanager.command[0], /printf '%s' "\$\$ALERT_WEBHOOK_URL" > \/tmp\/alert-webhook-url/);
    assert.equal(alertmanager.environment.ALERT_WEBHOOK_URL, `\${ALERT_WEBHOOK_URL:-}`);
    // Debian's amtool (0.25) predates url_file; everything else it checks as it is.
    const probe = await run("amtool", ["--version"]);
    if (probe.code !== 0) return;
    const dir = await mkdtemp(join(tmpdir(), "daon-amtool-"));
    try {
      const text = (await readFile(join(DEPLOY, "alertmanager/alertmanager.yml"), "utf8")).replace(
        "url_file: /tmp/alert-webhook-url",
        "url: https://alerts.example.invalid/hook",
      );
      await writeFile(join(dir, "alertmanager.yml"), text);
      const checked = await run("amtool", ["check-config", join(dir, "alertmanager.yml")]);
      assert.equal(checked.code, 0, checked.stdout + checked.stderr);
      assert.match(checked.stdout, /4 inhibit rules/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("deploy/prometheus: a real Prometheus scrapes a running system", () => {
  let system: DeploySystem;
  let dir: string;
  let prometheus: ChildProcess;
  let nodeExporter: ChildProcess;
  let prometheusUrl: string;
  let nodeExporterUrl: string;

  before(async () => {
    system = await startDeploySystem();
    await system.startApi();
    await system.startApi(0, { drainMs: 4000 });
    dir = await mkdtemp(join(tmpdir(), "daon-prometheus-"));

    // node-exporter with the backup's textfile metrics, as daon-backup writes them.
    await writeFile(
      join(dir, "daon_backup.prom"),
      `# HELP daon_backup_last_success_timestamp_seconds Unix time of the last backup that passed its quick verify.\n# TYPE daon_backup_last_success_timestamp_seconds gauge\ndaon_backup_last_success_timestamp_seconds ${Math.floor(Date.now() / 1000) - 3600}\n`,
    );
    const exporterPort = await freePort();
    nodeExporterUrl = `http://127.0.0.1:${exporterPort}/metrics`;
    nodeExporter = spawn(
      "prometheus-node-exporter",
      [`--web.listen-address=127.0.0.1:${exporterPort}`, `--collector.textfile.directory=${dir}`],
      { stdio: "ignore" },
    );

    // The shipped configuration, with a 1 s interval and the target files pointed at this system.
    const config = parse(await readFile(join(PROMETHEUS_DIR, "prometheus.yml"), "utf8"));
    config.global.scrape_interval = "1s";
    config.global.evaluation_interval = "1s";
    config.global.scrape_timeout = "1s";
    const port = await freePort();
    prometheusUrl = `http://127.0.0.1:${port}`;
    const self = config.scrape_configs.find((job: { job_name: string }) => job.job_name === "prometheus");
    self.static_configs = [{ targets: [`127.0.0.1:${port}`] }];
    await writeFile(join(dir, "prometheus.yml"), stringify(config));
    await cp(join(PROMETHEUS_DIR, "rules"), join(dir, "rules"), { recursive: true });
    const host = (url: string) => new URL(url).host;
    const targets = {
      "daon-api.yml": system.apis.map((api) => host(api.url)),
      "daon-node.yml": [host(system.nodeMetricsUrl)],
      "node-exporter.yml": [`127.0.0.1:${exporterPort}`],
      "alertmanager.yml": [],
    };
    await cp(join(PROMETHEUS_DIR, "targets"), join(dir, "targets"), { recursive: true });
    for (const [file, list] of Object.entries(targets)) await writeFile(join(dir, "targets", file), stringify([{ targets: list }]));
    prometheus = spawn(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
      ],
      { stdio: "ignore" },
    );
  });

  after(async () => {
    prometheus?.kill("SIGTERM");
    nodeExporter?.kill("SIGTERM");
    await system?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function query(promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`);
    const body = (await response.json()) as {
      status: string;
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    assert.equal(body.status, "success", JSON.stringify(body));
    return body.data.result;
  }

  const nonEmpty = (promql: string) => async () => {
    const result = await query(promql);
    return result.length > 0 ? result : undefined;
  };

  test("every target is up, the runbook's queries return data, and the rules are loaded", async () => {
    const [api, draining] = system.apis;
    await eventually("all targets up", async () => {
      const up = await query("up");
      return up.length === 5 && up.every((s) => s.value[1] === "1") ? up : undefined;
    });

    // Traffic: registrations that reach the ledger, verifications and stats.
    for (let i = 0; i < 5; i++) {
      const response = await fetch(`${api.url}/api/v1/protect`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ content: `deploy-prometheus ${Date.now()} ${i}`, metadata: { title: "Scraped" } }),
      });
      assert.ok([201, 202].includes(response.status), `protect answered ${response.status}`);
      const { contentHash } = (await response.json()) as { contentHash: string };
      assert.equal((await fetch(`${api.url}/api/v1/verify/${contentHash}`)).status, 200);
      assert.equal((await fetch(`${draining.url}/api/v1/stats`)).status, 200);
    }

    // A draining instance answers /health with 503 while it still serves: a real 5xx, then its target goes down.
    const stopping = draining.service.stop();
    await eventually("a 503 from the draining instance", async () => {
      const response = await fetch(`${draining.url}/health`);
      return response.status === 503 ? response : undefined;
    });
    await eventually("the 503 scraped", nonEmpty(`http_requests_total{status="503"}`));
    await stopping;

    // The runbook's Hour 4 and Hour 12 queries (shorter windows for a short test) and the node's height.
    const requests = await eventually("request rate", nonEmpty("rate(http_requests_total[1m])"));
    assert.ok(
      requests.some((s) => s.metric.route === "/api/v1/protect" && s.metric.method === "POST" && Number(s.value[1]) > 0),
      'requests.some((s) => s.metric.route === "/api/v1/protect" && s.metric.method === "POST" && Number(s.value[1...',
    );
    const errors = await eventually("5xx rate", nonEmpty(`rate(http_requests_total{status=~"5.."}[1m])`));
    assert.ok(
      errors.every((s) => s.metric.route === "/health" && s.metric.status === "503"),
      'errors.every((s) => s.metric.route === "/health" && s.metric.status === "503")',
    );
    const p95 = await eventually(
      "p95 latency",
      nonEmpty("histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[1m])))"),
    );
    assert.ok(Number(p95[0].value[1]) > 0, "Number(p95[0].value[1]) > 0");
    const perRoute = await eventually(
      "p95 per series",
      nonEmpty("histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[1m]))"),
    );
    assert.ok(perRoute.length > 1, "perRoute.length > 1");
    const height = await eventually("cometbft_consensus_height", nonEmpty("cometbft_consensus_height"));
    // CometBFT's consensus_height is the height being decided: one above a committed block.
    assert.ok(
      Number(height[0].value[1]) >= 2 && Number(height[0].value[1]) <= system.ledger.node.height + 1,
      "Number(height[0].value[1]) >= 2 && Number(height[0].value[1]) <= system.ledger.node.height + 1",
    );
    assert.equal(height[0].metric.chain_id, system.chainId);
    const registrations = await eventually("registrations counted", nonEmpty(`daon_registrations_total{status="created"}`));
    assert.ok(
      registrations.some((s) => Number(s.value[1]) === 5),
      "registrations.some((s) => Number(s.value[1]) === 5)",
    );
    await eventually("the node's tx count", async () => {
      const txs = await query("cometbft_consensus_total_txs");
      return txs.length > 0 && Number(txs[0].value[1]) >= 1 ? txs : undefined;
    });
    await eventually("block interval histogram", nonEmpty("rate(cometbft_consensus_block_interval_seconds_count[1m]) > 0"));

    // The stopped instance's target is down: what DaonApiDown fires on.
    const down = await eventually("the stopped instance down", nonEmpty(`up{job="daon-api"} == 0`));
    assert.equal(down[0].metric.instance, new URL(draining.url).host);

    // The runbook's "Verify Alerts Configured": curl -s http://localhost:9090/api/v1/rules | jq '.data.groups[] | .name'
    const rules = (await (await fetch(`${prometheusUrl}/api/v1/rules`)).json()) as { data: { groups: { name: string }[] } };
    assert.deepEqual(rules.data.groups.map((g) => g.name).sort(), [
      "daon-availability",
      "daon-backups",
      "daon-host",
      "daon-ledger-pipeline",
      "daon-requests",
    ]);
    assert.equal((await fetch(`${prometheusUrl}/-/healthy`)).status, 200);
  });

  test("the API's operational series (ops.md §13) carry live values", async () => {
    const [api] = system.apis;
    // A client that gives up mid-request still leaves the in-flight gauge.
    const aborted = new AbortController();
    const waiting = fetch(`${api.url}/api/v1/protect?wait=5`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ content: `deploy-prometheus aborted ${Date.now()}` }),
      signal: aborted.signal,
    }).catch(() => undefined);
    setTimeout(() => aborted.abort(), 50);
    await waiting;
    const text = await eventually("in-flight back to the scrape alone", async () => {
      const body = await (await fetch(`${api.url}/metrics`)).text();
      return /^http_requests_in_flight 1$/m.test(body) ? body : undefined;
    });
    assert.match(text, /^daon_build_info\{version="0\.1\.0",commit="[^"]+",chain_id="daon-test-[a-z0-9]+"\} 1$/m);
    assert.match(text, /^daon_db_pool_connections\{state="max"\} 20$/m);
    assert.match(text, /^daon_db_pool_connections\{state="in_use"\} \d+$/m);
    assert.match(text, /^daon_outbox_oldest_pending_seconds \d+(\.\d+)?$/m);
    for (const bound of ["2", "5"]) assert.match(text, new RegExp(`^http_request_duration_seconds_bucket\\{le="${bound}",`, "m"));
    assert.match(text, /^daon_ledger_height [1-9]\d*$/m);
    assert.match(text, /^daon_indexer_height [1-9]\d*$/m);
  });

  test("every metric the alert rules and the Grafana dashboard query appears on a live /metrics", async () => {
    const [api] = system.apis;
    const live = new Set<string>([
      ...exposedNames(await (await fetch(`${api.url}/metrics`)).text()),
      ...exposedNames(await (await fetch(system.nodeMetricsUrl)).text()),
      ...exposedNames(await (await fetch(nodeExporterUrl)).text()),
      // Series Prometheus makes itself: one per target, and one per active alert.
      "up",
      "ALERTS",
    ]);
    const rules = parse(await readFile(join(PROMETHEUS_DIR, "rules/daon.yml"), "utf8")) as {
      groups: { rules: { alert: string; expr: string }[] }[];
    };
    const dashboard = JSON.parse(await readFile(join(DEPLOY, "grafana/dashboards/daon-overview.json"), "utf8")) as {
      panels: { title: string; targets?: { expr: string }[] }[];
    };
    const used = [
      ...rules.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
      ...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr }))),
    ];
    assert.ok(used.length > 30, "used.length > 30");
    const missing = used.flatMap(({ where, expr }) =>
      metricNamesIn(expr)
        .filter((name) => !live.has(name))
        .map((n) => `${where}: ${n}`),
    );
    assert.deepEqual(missing, []);
    // Not vacuous: the names read include the API's, the node's and the host's.
    const read = new Set(used.flatMap(({ expr }) => metricNamesIn(expr)));
    for (const name of ["http_requests_total", "cometbft_consensus_height", "node_cpu_seconds_total", "daon_outbox_oldest_pending_seconds"])
      assert.ok(read.has(name), name);
  });
});
