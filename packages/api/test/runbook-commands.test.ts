/**
 * The production launch runbook checks the API and the node with shell lines: the T-1 "Full
 * Smoke Test" and the T-2h "Verify Chain ID" and "Test All API Endpoints" blocks. These tests
 * run those lines as written (real curl, real jq, bash with pipefail), with only the ports
 * 3000 and 26657 replaced by the test system's, then check the rest of the public surface an
 * operator reaches the same way (api.md §1, §2, §7): /api/v1, /docs, OpenAPI, /metrics,
 * security headers, request ids, the error envelope and rate limiting.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

const PROTECT_RATE_LIMIT_MAX = 5;
const BODY_LIMIT_JSON = 4096;
const BODY_LIMIT_FILE = 8192;
const VERIFICATION_BASE_URL = "https://daon.example";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Quotes one word for bash. */
const shq = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs a command line through bash with pipefail on, as an operator's terminal would, and returns what it printed. */
function sh(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile("bash", ["-c", `set -o pipefail; ${command}`], { timeout: 60_000, maxBuffer: 32 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`\`${command.slice(0, 400)}\` failed (exit ${error.code ?? error.signal}): ${stderr.slice(0, 2000)}`));
      else resolve(stdout);
    });
  });
}

/** The runbook's commands need curl and jq; without them the tests fail saying so rather than with an obscure shell error. */
async function requireCurlAndJq(): Promise<void> {
  const missing: string[] = [];
  for (const tool of ["curl", "jq"]) {
    if (!(await sh(`command -v ${tool} || true`)).trim()) missing.push(tool);
  }
  if (missing.length > 0) {
    throw new Error(
      `the runbook commands need curl and jq, and ${missing.join(" and ")} ${missing.length === 1 ? "is" : "are"} not installed ` +
        `(not on PATH): install ${missing.join(" and ")} (e.g. apt-get install ${missing.join(" ")}) to run these tests`,
    );
  }
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field
  body: any;
}

/** Status and headers of the final response in a `curl -D` dump (skipping `100 Continue`). */
function parseHeaderDump(dump: string): { status: number; headers: Record<string, string> } {
  const blocks = dump.split(/\r?\n\r?\n/).filter((block) => /^HTTP\/\S+ \d{3}/.test(block) && !/^HTTP\/\S+ 1\d\d/.test(block));
  const last = blocks.at(-1);
  assert.ok(last, `curl wrote no response headers: ${JSON.stringify(dump)}`);
  const [statusLine, ...lines] = last.split(/\r?\n/);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
  }
  return { status: Number(statusLine.split(" ")[1]), headers };
}

/** A Prometheus text sample line: name, labels, value. */
function parseSamples(text: string) {
  return text
    .split("\n")
    .filter((line) => line && !line.startsWith("#"))
    .map((line) => {
      const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
      assert.ok(match, `not a Prometheus sample: ${line}`);
      const labels = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
      return { name: match[1], labels, value: Number(match[3]) };
    });
}

test("curl and jq are installed: the runbook's commands need both", async () => {
  await requireCurlAndJq();
  assert.match(await sh("curl --version"), /^curl \d+\.\d+/);
  assert.match(await sh("jq --version"), /^jq-\d+\.\d+/);
});

for (const storage of STORAGE_PATHS) {
  describe(`the runbook's curl | jq commands against the API (${storage})`, () => {
    let system: TestSystem;
    let work: string;
    let apiPort: string;
    let rpcPort: string;
    let api: string;
    let calls = 0;
    let clients = 0;
    /** The two registrations the runbook makes: T-1 "Pre-launch test", T-2h "Production launch test". */
    // biome-ignore lint/suspicious/noExplicitAny: registration objects are read field by field
    const made: { text: string; registration: any }[] = [];

    before(async () => {
      await requireCurlAndJq();
      system = await startTestSystem(storage, {
        PROTECT_RATE_LIMIT_MAX: String(PROTECT_RATE_LIMIT_MAX),
        BODY_LIMIT_JSON: String(BODY_LIMIT_JSON),
        BODY_LIMIT_FILE: String(BODY_LIMIT_FILE),
        VERIFICATION_BASE_URL,
      });
      work = await mkdtemp(join(tmpdir(), "daon-runbook-"));
      apiPort = new URL(system.apiUrl).port;
      rpcPort = new URL(system.rpcUrl).port;
      api = `http://localhost:${apiPort}`;
    });
    after(async () => {
      await system?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    /** A runbook line as written, pointed at this system: only the ports change. */
    const runbook = (command: string) =>
      sh(command.replaceAll("localhost:3000", `localhost:${apiPort}`).replaceAll("localhost:26657", `localhost:${rpcPort}`));

    /** `curl -s -D <headers> ARGS | jq -c FILTER`: the answer's status and headers, and its body as jq printed it. */
    async function curl(args: string, filter = "."): Promise<Answer> {
      const headerFile = join(work, `headers-${++calls}`);
      const printed = await sh(`curl -s -D ${shq(headerFile)} ${args} | jq -c ${shq(filter)}`);
      return { ...parseHeaderDump(await readFile(headerFile, "latin1")), body: JSON.parse(printed) };
    }

    /**
     * A client of its own behind the trusted proxy (X-Forwarded-For from loopback): requests
     * that test limits and refusals count against no one else's per-IP allowance.
     */
    const asNewClient = () => `-H ${shq(`X-Forwarded-For: 198.18.${Math.floor(Math.random() * 256)}.${++clients}`)}`;

    function assertEnvelope(answer: Answer, status: number, code: string) {
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.deepEqual(Object.keys(answer.body).sort(), ["error", "success"]);
      assert.equal(answer.body.success, false);
      assert.equal(answer.body.error.code, code);
      assert.equal(typeof answer.body.error.message, "string");
      assert.ok(answer.body.error.message.length > 0);
      assert.deepEqual(
        Object.keys(answer.body.error).filter((key) => !["code", "message", "details", "requestId"].includes(key)),
        [],
        "the error carries code, message, details and requestId only",
      );
      assert.equal(answer.body.error.requestId, answer.headers["x-request-id"], "the envelope names the request id the header echoes");
      assert.doesNotMatch(JSON.stringify(answer.body), /\bat .*\.(ts|js):\d+|node_modules|postgres:\/\/|127\.0\.0\.1/);
      assert.match(answer.headers["content-type"], /^application\/json/);
    }

    function assertRegistration(registration: Record<string, unknown>, contentHash: string) {
      assert.equal(registration.success, true);
      assert.equal(registration.contentHash, contentHash);
      assert.equal(registration.ledgerContentHash, `sha256:${contentHash}`);
      assert.equal(registration.verificationUrl, `${VERIFICATION_BASE_URL}/verify/sha256:${contentHash}`);
      assert.equal(registration.status, "confirmed");
      assert.equal(typeof registration.blockHeight, "number");
      assert.ok((registration.blockHeight as number) >= 1);
      assert.match(registration.txHash as string, /^[0-9A-F]{64}$/);
      assert.equal(registration.chainId, system.chainId);
    }

    test("T-1 smoke test: protect registers the text on the ledger, the node has the block, stats count it", async () => {
      // 1. Register test content
      const printed = await runbook(`curl -X POST http://localhost:3000/api/v1/protect \\
  -H "Content-Type: application/json" \\
  -d '{"content": "Pre-launch test", "metadata": {"title": "Test"}}'`);
      const registration = JSON.parse(printed);
      assertRegistration(registration, "5ebde9ded539ae00451491463f5deeae1021fdd5be543a019ee897805364629a");
      assert.equal(registration.existing, false);
      assert.deepEqual(registration.metadata, { title: "Test", type: "text", description: null, author: null });
      made.push({ text: "Pre-launch test", registration });

      // 2. Verify blockchain transaction
      const syncInfo = JSON.parse(await runbook(`curl -s http://localhost:26657/status | jq '.result.sync_info'`));
      assert.ok(Number(syncInfo.latest_block_height) >= registration.blockHeight);
      assert.equal(syncInfo.catching_up, false);
      assert.match(syncInfo.latest_app_hash, /^[0-9A-F]{64}$/);

      // 3. Query content
      const stats = JSON.parse(await runbook(`curl -s http://localhost:3000/api/v1/stats | jq '.'`));
      assert.equal(stats.success, true);
      assert.equal(stats.stats.totalProtected, 1);
      assert.equal(stats.stats.confirmed, 1);
      assert.equal(stats.stats.pending, 0);
      assert.equal(stats.stats.chainId, system.chainId);
      assert.deepEqual(stats.stats.byLicense, { liberation_v1: 1 });
      assert.deepEqual(stats.stats.byAiTrainingPolicy, { prohibited: 1 });
      assert.ok(stats.stats.latestHeight >= registration.blockHeight);
      assert.ok(stats.stats.indexedHeight >= registration.blockHeight);
      assert.equal(stats.stats.outboxPending, 0);
      assert.deepEqual(
        stats.stats.recentProtections.map((r: { contentHash: string; status: string; blockHeight: number }) => [
          r.contentHash,
          r.status,
          r.blockHeight,
        ]),
        [[registration.contentHash, "confirmed", registration.blockHeight]],
      );
      assert.doesNotMatch(JSON.stringify(stats.stats.recentProtections), /"title"/, "no titles in stats");
    });

    test("T-2h verify chain ID: the node's network is the API's CHAIN_ID", async () => {
      const network = JSON.parse(await runbook(`curl -s http://localhost:26657/status | jq '.result.node_info.network'`));
      assert.equal(network, system.chainId);
      assert.equal(network, system.api.config.CHAIN_ID);
    });

    test("T-2h health: every dependency is reported, with the database engine, chain id, Redis and outbox", async () => {
      const health = JSON.parse(await runbook(`curl -s http://localhost:3000/health | jq '.'`));
      assert.equal(health.status, "healthy");
      assert.equal(health.chainId, system.chainId);
      assert.equal(health.maintenance, false);
      assert.equal(typeof health.version, "string");
      assert.ok(health.height >= made[0].registration.blockHeight);
      assert.ok(!Number.isNaN(Date.parse(health.timestamp)));
      const { database, ledger, redis, outbox, webhooks } = health.checks;
      assert.equal(database.status, "up");
      assert.equal(database.engine, storage === "postgres" ? "postgresql" : "pglite");
      assert.equal(typeof database.latencyMs, "number");
      assert.equal(ledger.status, "up");
      assert.equal(ledger.chainId, system.chainId);
      assert.ok(ledger.height >= made[0].registration.blockHeight);
      assert.equal(ledger.catchingUp, false);
      assert.ok(!Number.isNaN(Date.parse(ledger.latestBlockTime)));
      assert.deepEqual(redis, { status: storage === "postgres" ? "up" : "not_configured" });
      assert.deepEqual(outbox, { status: "up", pending: 0, oldestPendingSeconds: 0 });
      assert.equal(typeof webhooks.status, "string");
      assert.doesNotMatch(JSON.stringify(health), /127\.0\.0\.1|localhost|postgres:\/\/|redis:\/\//, "no hosts or secrets");

      const alias = JSON.parse(await runbook(`curl -s http://localhost:3000/api/v1/health | jq '.checks | map_values(.status)'`));
      assert.deepEqual(alias, {
        database: "up",
        ledger: "up",
        redis: storage === "postgres" ? "up" : "not_configured",
        outbox: "up",
        webhooks: webhooks.status,
      });
    });

    test("T-2h test all API endpoints: stats, protect, and the transaction found by tx_search", async () => {
      const earlier = JSON.parse(await runbook(`curl -s http://localhost:3000/api/v1/stats | jq '.'`));
      assert.equal(earlier.success, true);
      assert.equal(earlier.stats.totalProtected, 1);

      const registration = JSON.parse(
        await runbook(`curl -X POST http://localhost:3000/api/v1/protect \\
  -H "Content-Type: application/json" \\
  -d '{
    "content": "Production launch test",
    "metadata": {"title": "Launch Test", "type": "test"}
  }' | jq '.'`),
      );
      assertRegistration(registration, "caa72a14f01cdd666bdbffc211a1f984c280199b1fba4153b811bd3d8bdf6f45");
      made.push({ text: "Production launch test", registration });

      // Verify transaction on blockchain (the runbook's nested quoting sends query="'tx.height>0'")
      const total = JSON.parse(
        await runbook(`curl -s http://localhost:26657/tx_search?query='"'"'tx.height>0'"'"' | jq '.result.total_count'`),
      );
      const txHashes = [...new Set(made.map((m) => m.registration.txHash))];
      assert.equal(total, String(txHashes.length));

      // Stats are cached up to 5 s: ask again until the answer is fresh.
      let counted: { totalProtected: number; confirmed: number } | undefined;
      for (let attempt = 0; attempt < 40; attempt++) {
        counted = JSON.parse(await runbook(`curl -s http://localhost:3000/api/v1/stats | jq '.stats | {totalProtected, confirmed}'`));
        if (counted?.totalProtected === 2) break;
        await sleep(250);
      }
      assert.deepEqual(counted, { totalProtected: 2, confirmed: 2 });
    });

    test("each runbook registration is found by /verify/:hash, by /verify-content with its text, and on the ledger by tx_search", async () => {
      assert.equal(made.length, 2);
      const listed = JSON.parse(
        await runbook(
          `curl -s 'http://localhost:26657/tx_search?query="tx.height>0"&per_page=100' | jq '[.result.txs[] | {hash, height}]'`,
        ),
      );
      for (const { text, registration } of made) {
        const hash = registration.contentHash;
        const verified = JSON.parse(await runbook(`curl -s http://localhost:3000/api/v1/verify/${hash} | jq '.'`));
        assert.equal(verified.isValid, true);
        assert.equal(verified.contentHash, hash);
        assert.equal(verified.status, "confirmed");
        assert.equal(verified.blockHeight, registration.blockHeight);
        assert.equal(verified.txHash, registration.txHash);
        assert.equal(verified.protectionId, registration.protectionId);

        const byPrefixedUpper = JSON.parse(
          await runbook(`curl -s http://localhost:3000/api/v1/verify/sha256:${hash.toUpperCase()} | jq '.protectionId'`),
        );
        assert.equal(byPrefixedUpper, registration.protectionId);

        const byContent = JSON.parse(
          await runbook(`curl -s -X POST http://localhost:3000/api/v1/verify-content \\
  -H "Content-Type: application/json" \\
  -d ${shq(JSON.stringify({ content: text }))} | jq '.'`),
        );
        assert.equal(byContent.isValid, true);
        assert.equal(byContent.matchedBy, "canonical");
        assert.equal(byContent.contentHash, hash);
        assert.equal(byContent.protectionId, registration.protectionId);

        assert.ok(
          listed.some(
            (tx: { hash: string; height: string }) => tx.hash === registration.txHash && tx.height === String(registration.blockHeight),
          ),
          `tx ${registration.txHash} is among tx.height>0`,
        );
        const byEvent = JSON.parse(
          await runbook(
            `curl -s -G http://localhost:26657/tx_search --data-urlencode ${shq(`query="content_registered.content_hash='sha256:${hash}'"`)} | jq '{total: .result.total_count, txs: [.result.txs[] | {hash, height}]}'`,
          ),
        );
        assert.deepEqual(byEvent, { total: "1", txs: [{ hash: registration.txHash, height: String(registration.blockHeight) }] });
      }
    });

    test("GET /api/v1 names the API, its build, chain and where the docs are", async () => {
      const answer = await curl(shq(`${api}/api/v1`));
      assert.equal(answer.status, 200);
      assert.deepEqual(Object.keys(answer.body).sort(), ["build", "chainId", "docs", "name", "openapi", "success", "version"]);
      assert.equal(answer.body.success, true);
      assert.equal(answer.body.name, "DAON API");
      assert.equal(answer.body.chainId, system.chainId);
      assert.equal(answer.body.docs, "/docs");
      assert.equal(answer.body.openapi, "/api/v1/openapi.json");
      assert.match(answer.body.version, /^\d+\.\d+\.\d+/);
      assert.deepEqual(Object.keys(answer.body.build).sort(), ["builtAt", "commit"]);
      assert.equal(typeof answer.body.build.commit, "string");
    });

    test("/docs is an HTML page under CSP default-src 'self'; /api/v1/openapi.json is OpenAPI 3.1 with every public route", async () => {
      const headerFile = join(work, "docs-headers");
      const html = await sh(`curl -s -D ${shq(headerFile)} ${shq(`${api}/docs`)}`);
      const docs = parseHeaderDump(await readFile(headerFile, "latin1"));
      assert.equal(docs.status, 200);
      assert.match(docs.headers["content-type"], /^text\/html/);
      assert.match(html, /<html[\s>]/i);
      assert.match(html, /swagger-ui/i);
      assert.match(docs.headers["content-security-policy"], /(^|;)\s*default-src 'self'(;|$)/);
      assert.equal(docs.headers["x-frame-options"], "DENY");
      assert.equal(docs.headers["x-content-type-options"], "nosniff");

      const openapi = await curl(
        shq(`${api}/api/v1/openapi.json`),
        '{openapi, title: .info.title, operations: [.paths | to_entries[] | .key as $path | .value | to_entries[] | select(.key != "parameters") | {path: $path, method: .key, summary: .value.summary}]}',
      );
      assert.equal(openapi.status, 200);
      assert.equal(openapi.body.openapi, "3.1.0");
      assert.equal(openapi.body.title, "DAON API");
      const operations: { path: string; method: string; summary?: string }[] = openapi.body.operations;
      const listed = new Set(operations.map((o) => `${o.method.toUpperCase()} ${o.path}`));
      const publicRoutes = [
        "GET /api/v1",
        "POST /api/v1/protect",
        "GET /api/v1/verify/{hash}",
        "POST /api/v1/verify-content",
        "GET /api/v1/proof/{hash}",
        "GET /api/v1/content/{hash}/history",
        "GET /api/v1/transfer-history/{hash}",
        "GET /api/v1/stats",
        "GET /health",
        "GET /api/v1/health",
      ];
      assert.deepEqual(
        publicRoutes.filter((route) => !listed.has(route)),
        [],
        "every public route is in the OpenAPI document",
      );
      assert.deepEqual(
        operations.filter((o) => o.path.startsWith("/internal")),
        [],
      );
      assert.deepEqual(
        operations.filter((o) => !o.summary).map((o) => `${o.method} ${o.path}`),
        [],
        "every operation has a summary",
      );
    });

    test("/metrics counts requests by route template and registrations by outcome, with no hash in any label", async () => {
      const missing = await curl(shq(`${api}/api/v1/no-such-route/${made[0].registration.contentHash}`));
      assertEnvelope(missing, 404, "NOT_FOUND");
      const headerFile = join(work, "metrics-headers");
      const text = await sh(`curl -s -D ${shq(headerFile)} ${shq(`${api}/metrics`)}`);
      const metrics = parseHeaderDump(await readFile(headerFile, "latin1"));
      assert.equal(metrics.status, 200);
      assert.match(metrics.headers["content-type"], /^text\/plain/);
      assert.match(text, /^# TYPE http_requests_total counter$/m);
      assert.match(text, /^# TYPE daon_registrations_total counter$/m);
      const samples = parseSamples(text);
      const value = (name: string, labels: Record<string, string>) =>
        samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

      // The runbook's two protect calls, its verify lookups (by template, never by hash), and the 404 above.
      assert.equal(value("http_requests_total", { method: "POST", route: "/api/v1/protect", status: "201" }), 2);
      assert.equal(value("http_requests_total", { method: "GET", route: "/api/v1/verify/:hash", status: "200" }), 4);
      assert.equal(value("http_requests_total", { method: "POST", route: "/api/v1/verify-content", status: "200" }), 2);
      assert.ok((value("http_requests_total", { method: "GET", route: "/health", status: "200" }) ?? 0) >= 1);
      assert.ok((value("http_requests_total", { method: "GET", route: "unmatched", status: "404" }) ?? 0) >= 1);
      assert.equal(value("daon_registrations_total", { status: "created" }), 2);
      assert.ok(samples.some((s) => s.name === "http_request_duration_seconds_bucket" && s.labels.route === "/api/v1/protect"));
      assert.ok(samples.some((s) => s.name === "daon_ledger_height" && s.value >= made[1].registration.blockHeight));
      assert.ok(samples.some((s) => s.name === "daon_indexer_height" && s.value >= made[1].registration.blockHeight));

      const labelValues = samples.flatMap((s) => Object.values(s.labels));
      assert.deepEqual(
        labelValues.filter((v) => /[0-9a-fA-F]{64}/.test(v) || /\b\d{1,3}(\.\d{1,3}){3}\b/.test(v)),
        [],
        "no label holds a hash or an IP",
      );
    });

    test("security headers: nosniff, X-Frame-Options DENY and Referrer-Policy no-referrer on answers and errors", async () => {
      const answers = [
        await curl(shq(`${api}/api/v1`)),
        await curl(shq(`${api}/api/v1/stats`)),
        await curl(shq(`${api}/health`)),
        await curl(shq(`${api}/api/v1/verify/${"0".repeat(63)}1`)),
        await curl(`-X POST ${shq(`${api}/api/v1/protect`)} ${asNewClient()} -H 'Content-Type: application/json' -d '{"content": ""}'`),
      ];
      for (const answer of answers) {
        assert.equal(answer.headers["x-content-type-options"], "nosniff");
        assert.equal(answer.headers["x-frame-options"], "DENY");
        assert.equal(answer.headers["referrer-policy"], "no-referrer");
        assert.equal(answer.headers["strict-transport-security"], undefined, "HSTS only in production");
      }
      assert.deepEqual(
        answers.map((a) => a.status),
        [200, 200, 200, 404, 400],
      );
    });

    test("X-Request-Id: a valid one is kept, anything else replaced by a generated one; error envelopes carry it", async () => {
      const kept = await curl(`-H 'X-Request-Id: runbook.check:T-2h_01' ${shq(`${api}/api/v1`)}`);
      assert.equal(kept.headers["x-request-id"], "runbook.check:T-2h_01");

      const longest = "a".repeat(128);
      assert.equal((await curl(`-H 'X-Request-Id: ${longest}' ${shq(`${api}/api/v1`)}`)).headers["x-request-id"], longest);

      const generated = await curl(shq(`${api}/api/v1`));
      assert.match(generated.headers["x-request-id"], UUID);
      for (const invalid of ["has space", "a".repeat(129), "semi;colon", "slash/es", "ümlaut"]) {
        const answer = await curl(`-H ${shq(`X-Request-Id: ${invalid}`)} ${shq(`${api}/api/v1`)}`);
        assert.match(answer.headers["x-request-id"], UUID, `${JSON.stringify(invalid)} is replaced`);
      }
      const two = [await curl(shq(`${api}/api/v1`)), await curl(shq(`${api}/api/v1`))];
      assert.notEqual(two[0].headers["x-request-id"], two[1].headers["x-request-id"]);

      const notFound = await curl(`-H 'X-Request-Id: client-42' ${shq(`${api}/api/v1/nothing-here`)}`);
      assertEnvelope(notFound, 404, "NOT_FOUND");
      assert.equal(notFound.body.error.requestId, "client-42");

      const invalidId = await curl(`-H 'X-Request-Id: not valid!' ${shq(`${api}/api/v1/verify/zz`)}`);
      assertEnvelope(invalidId, 400, "INVALID_HASH");
      assert.match(invalidId.body.error.requestId, UUID);

      const refused = await curl(
        `-X POST ${shq(`${api}/api/v1/protect`)} ${asNewClient()} -H 'X-Request-Id: bad-json.1' -H 'Content-Type: application/json' -d '{"content":'`,
      );
      assertEnvelope(refused, 400, "MALFORMED_JSON");
      assert.equal(refused.body.error.requestId, "bad-json.1");
    });

    test("error envelopes: unknown route, malformed JSON, text/plain, bad hash, empty text", async () => {
      const protect = (args: string) => curl(`-X POST ${shq(`${api}/api/v1/protect`)} ${asNewClient()} ${args}`);

      const route = await curl(shq(`${api}/api/v1/does-not-exist`));
      assertEnvelope(route, 404, "NOT_FOUND");
      const postRoute = await curl(`-X POST -H 'Content-Type: application/json' -d '{}' ${shq(`${api}/api/v1/does-not-exist`)}`);
      assertEnvelope(postRoute, 404, "NOT_FOUND");

      assertEnvelope(await protect(`-H 'Content-Type: application/json' -d '{"content": "unterminated'`), 400, "MALFORMED_JSON");
      assertEnvelope(await protect(`-H 'Content-Type: application/json' -d '{"content": "x",}'`), 400, "MALFORMED_JSON");

      const plain = await protect(`-H 'Content-Type: text/plain' -d 'Pre-launch test'`);
      assertEnvelope(plain, 415, "UNSUPPORTED_MEDIA_TYPE");
      assertEnvelope(await protect(`-H 'Content-Type: application/xml' -d '<content/>'`), 415, "UNSUPPORTED_MEDIA_TYPE");

      assertEnvelope(await curl(shq(`${api}/api/v1/verify/not-a-hash`)), 400, "INVALID_HASH");
      assertEnvelope(await curl(shq(`${api}/api/v1/verify/sha256:${"a".repeat(63)}`)), 400, "INVALID_HASH");
      assertEnvelope(await curl(shq(`${api}/api/v1/proof/0x${"a".repeat(64)}`)), 400, "INVALID_HASH");
      assertEnvelope(await curl(shq(`${api}/api/v1/content/${"g".repeat(64)}/history`)), 400, "INVALID_HASH");
      assertEnvelope(await protect(`-H 'Content-Type: application/json' -d '{"contentHash": "sha512:abc"}'`), 400, "INVALID_HASH");

      assertEnvelope(await protect(`-H 'Content-Type: application/json' -d '{"content": ""}'`), 400, "NO_TEXT_CONTENT");
      assertEnvelope(await protect(`-H 'Content-Type: application/json' -d '{"content": "<p> </p>\\r\\n"}'`), 400, "NO_TEXT_CONTENT");
      const verifyEmpty = await curl(
        `-X POST ${shq(`${api}/api/v1/verify-content`)} ${asNewClient()} -H 'Content-Type: application/json' -d '{"content": "   "}'`,
      );
      assertEnvelope(verifyEmpty, 400, "NO_TEXT_CONTENT");

      // An unknown hash is a 404 with isValid false beside the error (api.md §2.4).
      const unknown = await curl(shq(`${api}/api/v1/verify/${"ab".repeat(32)}`));
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.success, false);
      assert.equal(unknown.body.isValid, false);
      assert.equal(unknown.body.contentHash, "ab".repeat(32));
      assert.equal(unknown.body.error.code, "NOT_FOUND");
      assert.equal(unknown.body.error.requestId, unknown.headers["x-request-id"]);
    });

    test("a body over the limit is refused with 413 PAYLOAD_TOO_LARGE naming the limit, for JSON and for file bytes", async () => {
      const jsonFile = join(work, "too-large.json");
      await writeFile(jsonFile, JSON.stringify({ content: "x".repeat(BODY_LIMIT_JSON) }));
      const json = await curl(
        `-X POST ${shq(`${api}/api/v1/protect`)} ${asNewClient()} -H 'Content-Type: application/json' --data-binary ${shq(`@${jsonFile}`)}`,
      );
      assertEnvelope(json, 413, "PAYLOAD_TOO_LARGE");
      assert.equal(json.body.error.details.limit, BODY_LIMIT_JSON);

      const bytesFile = join(work, "too-large.bin");
      await writeFile(bytesFile, Buffer.alloc(BODY_LIMIT_FILE + 1, 7));
      const file = await curl(
        `-X POST ${shq(`${api}/api/v1/protect?title=big`)} ${asNewClient()} -H 'Content-Type: application/octet-stream' --data-binary ${shq(`@${bytesFile}`)}`,
      );
      assertEnvelope(file, 413, "PAYLOAD_TOO_LARGE");
      assert.equal(file.body.error.details.limit, BODY_LIMIT_FILE);

      // Just at the limit is accepted.
      const fitsFile = join(work, "fits.bin");
      await writeFile(fitsFile, Buffer.alloc(BODY_LIMIT_FILE, 7));
      const fits = await curl(
        `-X POST ${shq(`${api}/api/v1/protect?wait=false`)} ${asNewClient()} -H 'Content-Type: application/octet-stream' --data-binary ${shq(`@${fitsFile}`)}`,
      );
      assert.equal(fits.status, 202, JSON.stringify(fits.body));
      assert.match(fits.body.contentHash, SHA256_HEX);
      assert.equal(fits.body.metadata.type, "file");
    });

    test(`rate limiting: after PROTECT_RATE_LIMIT_MAX (${PROTECT_RATE_LIMIT_MAX}) protects a client gets 429 RATE_LIMITED with Retry-After and RateLimit-*`, async () => {
      const client = asNewClient();
      const protect = (n: number) =>
        curl(
          `-X POST ${shq(`${api}/api/v1/protect?wait=false`)} ${client} -H 'Content-Type: application/json' -d ${shq(JSON.stringify({ content: `rate limit probe ${n} on ${system.chainId}` }))}`,
        );
      const allowed: Answer[] = [];
      for (let n = 1; n <= PROTECT_RATE_LIMIT_MAX; n++) allowed.push(await protect(n));
      assert.deepEqual(
        allowed.map((a) => [a.status, a.headers["ratelimit-limit"], a.headers["ratelimit-remaining"]]),
        Array.from({ length: PROTECT_RATE_LIMIT_MAX }, (_, i) => [
          202,
          String(PROTECT_RATE_LIMIT_MAX),
          String(PROTECT_RATE_LIMIT_MAX - 1 - i),
        ]),
      );

      const limited = await protect(PROTECT_RATE_LIMIT_MAX + 1);
      assertEnvelope(limited, 429, "RATE_LIMITED");
      assert.equal(limited.body.error.details.limit, PROTECT_RATE_LIMIT_MAX);
      const retryAfter = Number(limited.headers["retry-after"]);
      assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${limited.headers["retry-after"]}`);
      assert.equal(limited.headers["ratelimit-limit"], String(PROTECT_RATE_LIMIT_MAX));
      assert.equal(limited.headers["ratelimit-remaining"], "0");
      const reset = Number(limited.headers["ratelimit-reset"]);
      assert.ok(Number.isInteger(reset) && reset >= 0 && reset <= 60, `RateLimit-Reset ${limited.headers["ratelimit-reset"]}`);

      // Refused means refused: nothing was registered for the sixth text.
      const sixthText = `rate limit probe ${PROTECT_RATE_LIMIT_MAX + 1} on ${system.chainId}`;
      const sixth = await curl(
        `-X POST ${shq(`${api}/api/v1/verify-content`)} ${asNewClient()} -H 'Content-Type: application/json' -d ${shq(JSON.stringify({ content: sixthText }))}`,
      );
      assert.equal(sixth.status, 404);

      // The limit is per client: another address is still served, and /health is never limited.
      const other = await curl(
        `-X POST ${shq(`${api}/api/v1/protect?wait=false`)} ${asNewClient()} -H 'Content-Type: application/json' -d ${shq(JSON.stringify({ content: `another client on ${system.chainId}` }))}`,
      );
      assert.equal(other.status, 202);
      const health = await curl(`${client} ${shq(`${api}/health`)}`);
      assert.equal(health.status, 200);
      assert.equal(health.headers["ratelimit-limit"], undefined);
    });
  });
}
