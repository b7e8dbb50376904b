import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { openDatabase } from "@daon/api";
import { startTestSystem, type TestSystem } from "../../api/test/test-system.js";
import { reindex } from "../src/commands/reindex.js";
import { deploymentPaths, UsageError } from "../src/deployment.js";
import { daon, freePort } from "./deployment-fixture.js";

interface Confirmed {
  contentHash: string;
  protectionId: string;
  blockHeight: number;
  txHash: string;
  title: string;
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * One ledger node and API on PostgreSQL + Redis; `daon reindex` replays its ledger into both
 * storage paths: a fresh embedded database (PGlite) and the running API's own PostgreSQL.
 */
describe("daon reindex", () => {
  let system: TestSystem;
  let dir: string;
  let works: Confirmed[];

  /** A deployment's .env for the system's node: what `daon reindex` reads, as `daon api` does. */
  const envFile = async (name: string, settings: Record<string, string>) => {
    const path = join(dir, `${name}.env`);
    const values = {
      NODE_ENV: "test",
      CHAIN_ID: system.chainId,
      CHAIN_RPC: system.rpcUrl,
      API_MNEMONIC: system.api.config.API_MNEMONIC,
      DAON_STATE_DIR: join(dir, name),
      ...settings,
    };
    await writeFile(
      path,
      `${Object.entries(values)
        .map(([key, value]) => `${key}=${value}`)
        .join("\n")}\n`,
      { mode: 0o600 },
    );
    return path;
  };
  const rows = async (db: Awaited<ReturnType<typeof openDatabase>>["db"]) =>
    new Map(
      (await db.selectFrom("registrations").selectAll().execute()).map((row) => [
        row.content_hash,
        {
          status: row.status,
          protectionId: row.protection_id,
          blockHeight: row.block_height === null ? null : Number(row.block_height),
          txHash: row.tx_hash,
          metadata: row.metadata as Record<string, unknown>,
        },
      ]),
    );
  const assertAsOnLedger = (found: Awaited<ReturnType<typeof rows>>) => {
    for (const work of works) {
      const row = found.get(work.contentHash);
      assert.ok(row, `${work.contentHash} is in the read model`);
      assert.equal(row.status, "confirmed");
      assert.equal(row.blockHeight, work.blockHeight);
      assert.equal(row.txHash, work.txHash);
    }
  };

  before(async () => {
    system = await startTestSystem("postgres");
    dir = await mkdtemp(join(tmpdir(), "daon-reindex-"));
    // Two calls, so the works sit in more than one block.
    const protect = async (path: string, body: unknown) => {
      const response = await fetch(`${system.apiUrl}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      assert.ok(response.ok, await response.clone().text());
      return response.json();
    };
    const bulk = await protect("/api/v1/protect/bulk", {
      works: [1, 2, 3].map((n) => ({
        contentHash: sha256(`reindex ${n} ${randomBytes(8).toString("hex")}`),
        metadata: { title: `Work ${n}` },
      })),
    });
    const single = await protect("/api/v1/protect", {
      content: `reindex single ${randomBytes(8).toString("hex")}`,
      metadata: { title: "Single" },
    });
    works = [...bulk.results, single].map((r) => ({
      contentHash: r.contentHash,
      protectionId: r.protectionId,
      blockHeight: r.blockHeight,
      txHash: r.txHash,
      title: r.metadata.title,
    }));
    for (const work of works) assert.ok(work.blockHeight > 0, "registered and confirmed");
  });
  after(async () => {
    await system?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("into an empty embedded database (PGlite): every registration confirmed at the ledger's heights; replaying again changes nothing", async () => {
    const env = await envFile("embedded", {});
    const run = await daon(["--env-file", env, "--json", "reindex"], dir);
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    const toHeight = result.toHeight;
    assert.ok(toHeight >= Math.max(...works.map((w) => w.blockHeight)));
    assert.deepEqual(result, { command: "reindex", ok: true, exitCode: 0, fromHeight: 1, toHeight, registrations: 4, transfers: 0 });
    assert.match(run.stderr, new RegExp(`\\[${toHeight}/${toHeight}\\] 100%`));

    const openEmbedded = () => openDatabase({ stateDir: join(dir, "embedded"), poolMax: 1 });
    let database = await openEmbedded();
    const first = await rows(database.db);
    await database.close();
    assert.equal(first.size, works.length);
    assertAsOnLedger(first);
    // Found only on the ledger: added from its record (titles never go on the ledger).
    for (const row of first.values()) assert.equal(row.metadata.type, "ledger");

    // Again from the first work's block, in this process (the command's code, without another start-up).
    const from = Math.min(...works.map((w) => w.blockHeight));
    const again = await reindex(deploymentPaths({ envFile: env }), { fromHeight: String(from) });
    assert.equal(again.result.fromHeight, from);
    assert.match(again.human, new RegExp(`reindexed ${system.chainId} blocks ${from}–\\d+ into the embedded database: 4 registration`));
    database = await openEmbedded();
    const second = await rows(database.db);
    const cursor = await database.db.selectFrom("indexer_cursor").select("height").executeTakeFirstOrThrow();
    await database.close();
    assert.deepEqual(second, first, "a block indexed twice leaves the same read model");
    assert.ok(Number(cursor.height) >= toHeight);
  });

  test("into the running API's PostgreSQL: lost confirmations come back, protection ids and metadata are kept, a lost row is added", async () => {
    const { db } = system.api.database;
    const [lost, ...wiped] = works;
    await db
      .updateTable("registrations")
      .set({ status: "pending", block_height: null, tx_hash: null, block_time: null, ledger_creator: null })
      .where(
        "content_hash",
        "in",
        wiped.map((w) => w.contentHash),
      )
      .execute();
    await db.deleteFrom("outbox").where("content_hash", "=", lost.contentHash).execute();
    await db.deleteFrom("registrations").where("content_hash", "=", lost.contentHash).execute();

    const run = await daon(["--env-file", await envFile("postgres", { DATABASE_URL: system.databaseUrl! }), "reindex"], dir);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /into PostgreSQL: 4 registration\(s\) and 0 transfer\(s\)/);

    const found = await rows(db);
    assertAsOnLedger(found);
    for (const work of wiped) {
      assert.equal(found.get(work.contentHash)!.protectionId, work.protectionId);
      assert.equal(found.get(work.contentHash)!.metadata.title, work.title);
    }
    assert.equal(found.get(lost.contentHash)!.metadata.type, "ledger");
    // The running API answers from the rebuilt read model.
    for (const work of works) {
      const verified = await (await fetch(`${system.apiUrl}/api/v1/verify/${work.contentHash}`)).json();
      assert.equal(verified.status, "confirmed");
      assert.equal(verified.blockHeight, work.blockHeight);
      assert.equal(verified.txHash, work.txHash);
    }
  });

  test("refusals exit 2 with what to fix: node unreachable, another chain, embedded database in use, no such height", async () => {
    const port = await freePort();
    const unreachable = await daon(["--env-file", await envFile("unreachable", { CHAIN_RPC: `http://127.0.0.1:${port}` }), "reindex"], dir);
    assert.equal(unreachable.code, 2);
    assert.match(unreachable.stderr, new RegExp(`the ledger node at http://127.0.0.1:${port} does not answer`));
    assert.equal(unreachable.stdout, "");

    // The other refusals in this process: a UsageError is what the command exits 2 for.
    const refusal = async (name: string, settings: Record<string, string>, pattern: RegExp, fromHeight?: string) => {
      const deployment = deploymentPaths({ envFile: await envFile(name, settings) });
      await assert.rejects(
        reindex(deployment, { fromHeight }),
        (error: Error) => error instanceof UsageError && pattern.test(error.message),
      );
    };
    await refusal(
      "other",
      { CHAIN_ID: "daon-other-chain" },
      new RegExp(`CHAIN_ID is daon-other-chain but the ledger node at .* is chain ${system.chainId}`),
    );
    // A live `daon api` (this test's own pid stands in for it) holds the embedded database.
    const instances = join(dir, "busy", "run", "instances");
    await mkdir(instances, { recursive: true });
    await writeFile(
      join(instances, `api-${process.pid}.json`),
      JSON.stringify({ kind: "api", pid: process.pid, startedAt: new Date().toISOString() }),
    );
    await refusal("busy", {}, new RegExp(`is in use by daon api \\(pid ${process.pid}\\): stop it first`));
    await refusal("zero", {}, /--from-height must be a block height of 1 or more/, "0");
    await refusal("beyond", {}, /--from-height 99999999 is above the node's height \d+/, "99999999");
  });
});
