import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { ConfigError } from "@daon/api";
import { deploymentPaths, UsageError } from "../src/deployment.js";
import { runApi, runNode, runUp } from "../src/commands/serve.js";
import { createDeployment, protect, sleep, type TestDeployment, waitConfirmed } from "./deployment-fixture.js";

for (const storage of ["pglite", "postgres"] as const) {
  describe(`graceful shutdown of daon up (${storage})`, () => {
    let d: TestDeployment;
    before(async () => {
      d = await createDeployment(storage);
    });
    after(() => d.destroy());

    test("SIGTERM under protect load: /health says draining while serving, in-flight requests finish, exit 0, nothing acknowledged is lost", async () => {
      await d.start({ DAON_DRAIN_MS: "1500" });
      const acknowledged: string[] = [];
      let stopLoad = false;
      let run = 0;
      const worker = async (id: number) => {
        while (!stopLoad) {
          try {
            const answer = await protect(d.apiUrl, `shutdown load ${storage} ${id} ${run++} ${Math.random()}`, "true");
            if (answer.status === 201 || answer.status === 202) acknowledged.push(answer.body.contentHash as string);
            else if (answer.status >= 500) return; // refused while closing: not acknowledged, the client retries elsewhere
          } catch {
            return; // the server stopped accepting
          }
        }
      };
      const workers = [0, 1, 2, 3].map(worker);
      await sleep(1500);
      const up = d.children[0];
      const exited = new Promise<number | null>((done) => up.once("exit", (code) => done(code)));
      up.kill("SIGTERM");
      const seen: string[] = [];
      for (let i = 0; i < 40; i++) {
        const health = await fetch(`${d.apiUrl}/health`).catch(() => undefined);
        if (!health) break;
        seen.push(`${health.status} ${((await health.json()) as { status: string }).status}`);
        await sleep(50);
      }
      assert.ok(seen.includes("503 draining"), `health during the drain: ${seen.join(", ")}`);
      const servedWhileDraining = acknowledged.length;
      stopLoad = true;
      await Promise.all(workers);
      assert.equal(await exited, 0, d.output());
      d.children = [];
      assert.match(d.output(), /SIGTERM: draining.*\n[\s\S]*stopped cleanly/);
      assert.ok(servedWhileDraining >= 4, `acknowledged ${servedWhileDraining}`);

      // Restarted with a short shutdown timeout, for the next test.
      await d.start({ DAON_DRAIN_MS: "300", DAON_SHUTDOWN_TIMEOUT_MS: "1000" });
      for (const hash of acknowledged) {
        const record = await waitConfirmed(d.apiUrl, hash, 20_000);
        assert.equal(record.status, "confirmed", `${hash} after the restart: ${JSON.stringify(record)}`);
        assert.ok(Number(record.blockHeight) >= 1);
      }
      if (storage === "postgres") assert.deepEqual(await d.stop(), [0]);
    });

    // Process behaviour, the same on both storage paths: run on one.
    test("a request that never finishes is named when the shutdown times out (exit 1); a second signal exits 1 at once", {
      skip: storage === "postgres" && "storage-independent: run on pglite",
    }, async () => {
      // A client that sends half a body and waits: the request stays in flight.
      const socket = connect(Number(new URL(d.apiUrl).port), "127.0.0.1");
      await new Promise((ready) => socket.once("connect", ready));
      socket.write(
        `POST /api/v1/protect HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{"content":"half`,
      );
      await sleep(200);
      const [code] = await d.stop();
      socket.destroy();
      assert.equal(code, 1);
      assert.match(d.output(), /stop failed: http: 1 request\(s\) still in flight after 1 s/);

      await d.start({ DAON_DRAIN_MS: "3000" });
      const up = d.children[0];
      const exited = new Promise<number | null>((done) => up.once("exit", (c) => done(c)));
      up.kill("SIGTERM");
      await sleep(300);
      up.kill("SIGINT");
      assert.equal(await exited, 1);
      d.children = [];
      assert.match(d.output(), /SIGINT again: exiting now/);
    });
  });
}

describe("start refusals (ops.md §2): exit 2 with the reason", () => {
  let d: TestDeployment;
  before(async () => {
    d = await createDeployment("pglite");
  });
  after(() => d.destroy());
  const log = () => {};
  const paths = () => deploymentPaths({ envFile: d.envFile });

  async function refusedWith(changes: Record<string, string | undefined>, run: () => Promise<unknown>, reason: RegExp) {
    const saved = d.env();
    d.setEnv(changes);
    try {
      await assert.rejects(run(), (error: Error) => error instanceof UsageError && reason.test(error.message));
    } finally {
      d.setEnv(Object.fromEntries(Object.keys(changes).map((k) => [k, saved[k]])));
    }
  }

  test("production with a weak secret, CHAIN_ID ≠ genesis, CHAIN_ID ≠ the node's network", async () => {
    await refusedWith(
      { NODE_ENV: "production", JWT_SECRET: "changeme" },
      () => runUp(paths(), {}, log),
      /refusing to start in production: JWT_SECRET is shorter than 32 characters/,
    );
    await refusedWith(
      { CHAIN_ID: "daon-test-other" },
      () => runUp(paths(), {}, log),
      /CHAIN_ID in .*\.env is daon-test-other but .*genesis\.json is chain daon-test-pglite-/,
    );
    await refusedWith(
      { CHAIN_ID: "daon-test-other" },
      () => runNode(paths(), { home: paths().nodeHome }, log),
      /is chain daon-test-pglite-/,
    );
    await d.start();
    try {
      await refusedWith(
        { CHAIN_ID: "daon-test-other", PORT: "0" },
        () => runApi(paths(), {}, log),
        /CHAIN_ID is daon-test-other but the ledger node at .* is chain daon-test-pglite-/,
      );
      // The same home twice: its store is locked by the running node.
      const second = await d.daon(["up", "--rpc-laddr", "tcp://127.0.0.1:0"]);
      assert.equal(second.code, 2, second.stderr);
      assert.match(second.stderr, /refusing to start: the ledger home is locked/);
    } finally {
      await d.stop();
    }
    // An invalid .env is a ConfigError, which the command turns into exit 2 (as the locked home above).
    const saved = d.env();
    d.setEnv({ PORT: "not-a-port" });
    await assert.rejects(
      runUp(paths(), {}, log),
      (error: Error) => error instanceof ConfigError && /invalid configuration: PORT/.test(error.message),
    );
    d.setEnv({ PORT: saved.PORT });
  });
});
