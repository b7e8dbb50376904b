import { join } from "node:path";
import { Confirmations, Indexer, LedgerClient, openDatabase, queueContentConfirmed } from "@daon/api";
import type { Command } from "commander";
import { type Deployment, deploymentPaths, UsageError } from "../deployment.js";
import { liveInstances } from "../preflight/context.js";
import { takeOpsLock } from "../rotation/ops-lock.js";
import { type CommandOutcome, Interruption, OperationFailed, runCommand } from "../services/operation.js";
import { apiConfig } from "./serve.js";

const HELP = `
Replays the ledger's blocks (from genesis, or from --from-height) into the read model,
in the database the API uses (.env: DATABASE_URL, else PGlite under DAON_STATE_DIR/db),
up to the node's height when it starts. Registrations already in the database keep their
protection ids and metadata and get the ledger's block height, tx hash and time; ones found
only on the ledger are added from its record (the ledger's record wins).

Safe while the API runs on PostgreSQL: every block is indexed in one transaction that
only sets what the ledger says, so indexing a block twice (here and in the running API,
which also follows the lowered cursor) leaves the same read model, and content.confirmed
webhooks go out only for registrations confirmed for the first time. While old ownership
transfers are replayed, a running API may briefly show a work's earlier owner.
Refused (exit 2) with the embedded database (PGlite) while a 'daon up' or 'daon api' of
this deployment runs: PGlite serves one process; stop it first. Also refused (exit 2) when
the node at CHAIN_RPC does not answer or is another chain than CHAIN_ID.

Interrupted (Ctrl-C) or failed, it can be resumed with --from-height at the block it names.`;

/** Time between progress lines: on a terminal the line is redrawn, elsewhere one plain line per 10 s (ops.md §0). */
const TTY_EVERY_MS = 2000;
const PLAIN_EVERY_MS = 10_000;
/** A block that fails (database or node briefly away) is tried this often before the replay stops. */
const ATTEMPTS = 3;

/** The indexer logs only from its background loop, which a replay does not run. */
const quiet = { warn() {}, info() {}, error() {}, debug() {} } as unknown as ConstructorParameters<typeof Indexer>[2];

/** Registers `daon reindex` (DESIGN.md decision 5: the read model is rebuildable). */
export function registerReindex(program: Command): void {
  program
    .command("reindex")
    .description("replay the ledger from genesis into the read model")
    .option("--from-height <n>", "first block to replay (default 1: genesis)")
    .addHelpText("after", HELP)
    .action(async (options: { fromHeight?: string }) => {
      const globals = program.opts();
      const deployment = deploymentPaths({ envFile: globals.envFile });
      await runCommand(
        {
          command: "reindex",
          json: Boolean(globals.json),
          audit: { stateDir: deployment.stateDir, details: { fromHeight: options.fromHeight ?? "1" } },
        },
        () => reindex(deployment, options),
      );
    });
}

export async function reindex(deployment: Deployment, options: { fromHeight?: string }): Promise<CommandOutcome> {
  const fromHeight = options.fromHeight === undefined ? 1 : Number(options.fromHeight);
  if (!Number.isSafeInteger(fromHeight) || fromHeight < 1 || !/^\d+$/.test(options.fromHeight ?? "1")) {
    throw new UsageError(`--from-height must be a block height of 1 or more, not ${JSON.stringify(options.fromHeight)}`);
  }
  const config = apiConfig(deployment, {});
  const ledger = await LedgerClient.connect(config.CHAIN_RPC, config.API_MNEMONIC, config.CHAIN_ID);
  try {
    const status = await ledger.status().catch((error: Error) => {
      throw new UsageError(
        `the ledger node at ${config.CHAIN_RPC} does not answer (${error.message}): start it, or set CHAIN_RPC in ${deployment.envFile}`,
      );
    });
    if (status.chainId !== config.CHAIN_ID) {
      throw new UsageError(
        `CHAIN_ID is ${config.CHAIN_ID} but the ledger node at ${config.CHAIN_RPC} is chain ${status.chainId}: refusing to replay another chain`,
      );
    }
    const toHeight = status.height;
    if (fromHeight > toHeight) throw new UsageError(`--from-height ${fromHeight} is above the node's height ${toHeight}`);
    if (!config.DATABASE_URL) {
      const running = liveInstances(deployment.stateDir).filter((i) => i.kind === "up" || i.kind === "api");
      if (running.length > 0) {
        const who = running.map((i) => `daon ${i.kind} (pid ${i.pid})`).join(", ");
        throw new UsageError(
          `the embedded database ${join(config.DAON_STATE_DIR, "db")} is in use by ${who}: stop it first (PGlite serves one process)`,
        );
      }
    }
    const release = await takeOpsLock(deployment.stateDir, "reindex");
    try {
      const { registrations, transfers, engine } = await replay(config, ledger, fromHeight, toHeight);
      return {
        result: { fromHeight, toHeight, registrations, transfers },
        human: `reindexed ${config.CHAIN_ID} blocks ${fromHeight}–${toHeight} into ${engine === "pglite" ? "the embedded database" : "PostgreSQL"}: ${registrations} registration(s) and ${transfers} transfer(s) confirmed in those blocks`,
      };
    } finally {
      await release();
    }
  } finally {
    ledger.disconnect();
  }
}

async function replay(config: ReturnType<typeof apiConfig>, ledger: LedgerClient, fromHeight: number, toHeight: number) {
  const database = await openDatabase({ databaseUrl: config.DATABASE_URL, stateDir: config.DAON_STATE_DIR, poolMax: 2 });
  const interruption = new Interruption();
  try {
    const { db } = database;
    // The same indexer and webhook hook as the API's: content.confirmed only for a first confirmation.
    const indexer = new Indexer(db, ledger, quiet, new Confirmations(), queueContentConfirmed);
    // The cursor goes back first, so a replay cut short is finished by the API's own indexer.
    await db
      .updateTable("indexer_cursor")
      .set({ height: fromHeight - 1 })
      .where("id", "=", 1)
      .execute();
    const progress = new ReplayProgress(fromHeight, toHeight);
    process.stderr.write(`replaying blocks ${fromHeight}–${toHeight} of ${config.CHAIN_ID} from ${config.CHAIN_RPC}\n`);
    for (let height = fromHeight; height <= toHeight; height++) {
      stopIfInterrupted(interruption, height);
      await indexWithRetries(indexer, height);
      progress.at(height);
    }
    progress.done();
    const inRange = <T extends "registrations" | "transfers">(table: T) =>
      db
        .selectFrom(table as "registrations")
        .select((eb) => eb.fn.countAll<string>().as("n"))
        .where("status", "=", "confirmed")
        .where("block_height", ">=", String(fromHeight) as never)
        .where("block_height", "<=", String(toHeight) as never)
        .executeTakeFirstOrThrow();
    const [registrations, transfers] = await Promise.all([inRange("registrations"), inRange("transfers")]);
    return { registrations: Number(registrations.n), transfers: Number(transfers.n), engine: database.engine };
  } finally {
    interruption.dispose();
    await database.close();
  }
}

/** Ctrl-C stops the replay between blocks, saying where to resume. */
function stopIfInterrupted(interruption: Interruption, height: number): void {
  try {
    interruption.check();
  } catch {
    throw new OperationFailed(`interrupted by SIGINT before block ${height}: resume with --from-height ${height}`, {
      resumeFromHeight: height,
    });
  }
}

async function indexWithRetries(indexer: Indexer, height: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await indexer.indexBlock(height);
      return;
    } catch (error) {
      if (attempt >= ATTEMPTS) {
        throw new OperationFailed(
          `block ${height} could not be indexed (${(error as Error).message}): resume with --from-height ${height}`,
          {
            resumeFromHeight: height,
          },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 1000 * attempt));
    }
  }
}

/** `[height/target] n%` on stderr: redrawn every few seconds on a terminal, a plain line per 10 s elsewhere. */
class ReplayProgress {
  readonly #tty = process.stderr.isTTY === true;
  #shownAt = Date.now();

  constructor(
    private readonly fromHeight: number,
    private readonly toHeight: number,
  ) {}

  at(height: number): void {
    if (Date.now() - this.#shownAt < (this.#tty ? TTY_EVERY_MS : PLAIN_EVERY_MS)) return;
    this.#shownAt = Date.now();
    this.#show(height, false);
  }

  done(): void {
    this.#show(this.toHeight, true);
  }

  #show(height: number, last: boolean): void {
    const percent = Math.floor(((height - this.fromHeight + 1) / (this.toHeight - this.fromHeight + 1)) * 100);
    const line = `[${height}/${this.toHeight}] ${percent}%`;
    if (this.#tty) process.stderr.write(`\r${line}\x1b[K${last ? "\n" : ""}`);
    else process.stderr.write(`${line}\n`);
  }
}
