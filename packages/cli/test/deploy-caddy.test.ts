import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Agent, request } from "undici";
import { DEPLOY, type DeploySystem, eventually, freePort, run, startDeploySystem } from "./deploy-system.js";

const CADDYFILE = join(DEPLOY, "Caddyfile");

describe("deploy/Caddyfile", () => {
  test("caddy validate passes for the public (ACME) and local (tls internal) modes, with either upstream file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "daon-caddy-validate-"));
    try {
      for (const [tls, upstreams] of [
        ["acme", "upstreams.compose.caddy"],
        ["local", "upstreams.host.caddy"],
      ]) {
        const result = await run("caddy", ["validate", "--config", CADDYFILE, "--adapter", "caddyfile"], {
          env: {
            PUBLIC_HOST: "api.daon.network",
            CADDY_TLS: tls,
            DAON_UPSTREAMS: join(DEPLOY, "caddy", upstreams),
            CADDY_LOG_DIR: dir,
            HOME: dir,
            XDG_DATA_HOME: dir,
            XDG_CONFIG_HOME: dir,
          },
        });
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout + result.stderr, /Valid configuration/);
      }
      // And a broken one does not pass: the check can fail.
      const broken = join(dir, "Caddyfile");
      await writeFile(broken, (await readFile(CADDYFILE, "utf8")).replace("lb_policy least_conn", "lb_policy fastest_please"));
      const refused = await run("caddy", ["validate", "--config", broken, "--adapter", "caddyfile"], {
        env: {
          PUBLIC_HOST: "localhost",
          DAON_UPSTREAMS: join(DEPLOY, "caddy/upstreams.host.caddy"),
          CADDY_LOG_DIR: dir,
          HOME: dir,
          XDG_DATA_HOME: dir,
        },
      });
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /fastest_please/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("deploy/Caddyfile: a real Caddy in front of two API instances sharing PostgreSQL", () => {
  let system: DeploySystem;
  let dir: string;
  let caddy: ChildProcess;
  let publicUrl: string;
  let localUrl: string;
  let ca: Buffer;
  const agents = new Map<string, Agent>();
  const ports = { a: 0, b: 0 };
  const caddyLog: string[] = [];

  before(async () => {
    // A low rate limit (shared through Redis) to see whose address the API keys it by.
    system = await startDeploySystem({ env: { RATE_LIMIT_MAX: "10" } });
    ports.a = await freePort();
    ports.b = await freePort();
    await system.startApi(ports.a);
    // ops.md §2: a stopping instance answers /health with 503 for 5 s while it still serves.
    await system.startApi(ports.b, { drainMs: 5000 });

    dir = await mkdtemp(join(tmpdir(), "daon-caddy-"));
    await writeFile(join(dir, "upstreams.caddy"), `to 127.0.0.1:${ports.a} 127.0.0.1:${ports.b}\n`);
    const [https, http, local, admin] = [await freePort(), await freePort(), await freePort(), await freePort()];
    publicUrl = `https://127.0.0.1:${https}`;
    localUrl = `http://127.0.0.1:${local}`;
    // The shipped Caddyfile as it is; only the environment differs (local mode, loopback, free ports).
    caddy = spawn("caddy", ["run", "--config", CADDYFILE, "--adapter", "caddyfile"], {
      env: {
        ...process.env,
        PUBLIC_HOST: "127.0.0.1",
        CADDY_TLS: "local",
        CADDY_PUBLIC_BIND: "127.0.0.1",
        CADDY_HTTP_PORT: String(http),
        CADDY_HTTPS_PORT: String(https),
        CADDY_ADMIN: `127.0.0.1:${admin}`,
        DAON_LOCAL_PORT: String(local),
        DAON_LOCAL_BIND: "127.0.0.1",
        DAON_UPSTREAMS: join(dir, "upstreams.caddy"),
        CADDY_LOG_DIR: dir,
        HOME: dir,
        XDG_DATA_HOME: dir,
        XDG_CONFIG_HOME: dir,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    caddy.stderr!.on("data", (chunk) => caddyLog.push(String(chunk)));
    await eventually("caddy's local site", async () => ((await fetch(`${localUrl}/health`)).status === 200 ? true : undefined));
    // Trust Caddy's internal CA, as a client of a `tls internal` site would.
    ca = await readFile(join(dir, "caddy/pki/authorities/local/root.crt"));
    await eventually("caddy's public site", async () => ((await get("/health")).status === 200 ? true : undefined));
  });

  after(async () => {
    caddy?.kill("SIGTERM");
    for (const client of agents.values()) await client.close();
    await system?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** One keep-alive client per source address, trusting Caddy's internal CA. */
  function agent(from: string): Agent {
    let client = agents.get(from);
    if (!client) {
      client = new Agent({ localAddress: from, connect: { ca } });
      agents.set(from, client);
    }
    return client;
  }

  async function get(path: string, options: { from?: string; headers?: Record<string, string>; base?: string } = {}) {
    const response = await request(`${options.base ?? publicUrl}${path}`, {
      dispatcher: agent(options.from ?? "127.0.0.1"),
      headers: options.headers,
    });
    return { status: response.statusCode, headers: response.headers, body: await response.body.text() };
  }

  /** How many requests for `path` each instance received (from its own request log). */
  function countServed(path: string): number[] {
    return system.apis.map(
      (api) =>
        api.logs.filter((line) => {
          const entry = JSON.parse(line);
          return entry.msg === "incoming request" && entry.req?.url === path;
        }).length,
    );
  }

  test("requests are balanced over both instances; security headers set; /metrics and /internal are not public", async () => {
    const before = countServed("/docs");
    const answers = await Promise.all(Array.from({ length: 40 }, () => get("/docs")));
    assert.ok(
      answers.every((a) => a.status === 200),
      "answers.every((a) => a.status === 200)",
    );
    const after = countServed("/docs");
    const [a, b] = [after[0] - before[0], after[1] - before[1]];
    assert.equal(a + b, 40);
    assert.ok(a > 0 && b > 0, `both instances serve: ${a} / ${b}`);

    const health = await get("/health");
    assert.equal(health.status, 200);
    assert.equal(JSON.parse(health.body).status, "healthy");
    assert.equal(health.headers["strict-transport-security"], "max-age=31536000; includeSubDomains");
    assert.equal(health.headers["x-content-type-options"], "nosniff");
    assert.equal(health.headers["x-frame-options"], "DENY");
    assert.match(String(health.headers["content-security-policy"]), /default-src 'self'.*frame-ancestors 'none'/);
    assert.equal(health.headers.server, undefined);
    assert.ok(health.headers["x-request-id"], "the API's own headers pass through");

    for (const path of ["/metrics", "/internal/ops/config", "/internal/ops/stats?x=1"]) {
      for (const base of [publicUrl, localUrl]) {
        const answer = await get(path, { base });
        assert.equal(answer.status, 404, `${base}${path}`);
        assert.equal(JSON.parse(answer.body).error.code, "NOT_FOUND");
        assert.doesNotMatch(answer.body, /http_requests_total/);
      }
    }
    // Bodies over the API's largest limit (BODY_LIMIT_FILE, 25 MiB) stop at Caddy.
    const huge = await request(`${publicUrl}/api/v1/protect`, {
      method: "POST",
      dispatcher: agent("127.0.0.1"),
      headers: { "content-type": "application/octet-stream" },
      body: Buffer.alloc(27 * 1024 * 1024, 1),
    });
    await huge.body.text();
    assert.equal(huge.statusCode, 413);
    // The API itself still serves its metrics to the host (Prometheus scrapes instances directly).
    assert.match(await (await fetch(`${system.apis[0].url}/metrics`)).text(), /http_requests_total/);
  });

  test("the client's address as Caddy sees it reaches the rate limiter; a forged X-Forwarded-For does not", async () => {
    // 127.0.0.2 forges a new X-Forwarded-For on every request: if the API believed it, each would get a fresh bucket.
    const forged = [];
    for (let i = 0; i < 12; i++) {
      forged.push(
        await get("/api/v1", { from: "127.0.0.2", headers: { "x-forwarded-for": `203.0.113.${i}`, "x-real-ip": `198.51.100.${i}` } }),
      );
    }
    assert.deepEqual(
      forged.map((a) => a.status),
      [...Array(10).fill(200), 429, 429],
    );
    assert.equal(JSON.parse(forged[11].body).error.code, "RATE_LIMITED");
    // Another client has its own bucket.
    assert.equal((await get("/api/v1", { from: "127.0.0.3" })).status, 200);

    // The API logged Caddy's view of the client, never the forged one.
    const remote = system.apis.flatMap((api) =>
      api.logs
        .map((line) => JSON.parse(line))
        .filter((entry) => entry.msg === "incoming request" && entry.req?.url === "/api/v1")
        .map((entry) => entry.req.remoteAddress),
    );
    assert.ok(remote.includes("127.0.0.2") && remote.includes("127.0.0.3"), remote.join(","));
    assert.ok(
      !remote.some((address) => address.startsWith("203.0.113.") || address.startsWith("198.51.100.")),
      '!remote.some((address) => address.startsWith("203.0.113.") || address.startsWith("198.51.100."))',
    );

    // Caddy's access log is JSON lines with the real client address.
    const access = (await readFile(join(dir, "daon-access.log"), "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line));
    assert.ok(
      access.some((entry) => entry.request.remote_ip === "127.0.0.2" && entry.status === 429),
      'access.some((entry) => entry.request.remote_ip === "127.0.0.2" && entry.status === 429)',
    );
  });

  test("stopping an instance loses no request; health checks take it out and put it back", async () => {
    const [, second] = system.apis;
    const failures: string[] = [];
    let total = 0;
    let running = true;
    const loop = async () => {
      while (running) {
        total += 1;
        const answer = await get("/docs").catch((error: Error) => ({ status: 0, body: error.message }));
        if (answer.status !== 200) failures.push(`${answer.status} ${answer.body.slice(0, 100)}`);
      }
    };
    const workers = Array.from({ length: 4 }, loop);
    await new Promise((ready) => setTimeout(ready, 500));
    await second.service.stop();
    system.apis.splice(system.apis.indexOf(second), 1);
    await new Promise((ready) => setTimeout(ready, 1000));
    running = false;
    await Promise.all(workers);
    assert.ok(total > 50, `the loop ran (${total} requests)`);
    assert.deepEqual(failures, []);

    // While it is down, everything goes to the first instance.
    const before = countServed("/docs");
    const answers = await Promise.all(Array.from({ length: 20 }, () => get("/docs")));
    assert.ok(
      answers.every((a) => a.status === 200),
      "answers.every((a) => a.status === 200)",
    );
    const after = countServed("/docs");
    assert.equal(after[0] - before[0], 20);

    // Started again on the same address, the next passing health check puts it back.
    const restarted = await system.startApi(ports.b);
    await eventually(
      "the restarted instance receiving requests",
      async () => {
        const logsBefore = restarted.logs.length;
        await Promise.all(Array.from({ length: 10 }, () => get("/docs")));
        return restarted.logs.slice(logsBefore).some((line) => line.includes("/docs")) ? true : undefined;
      },
      20_000,
    );
  });
});
