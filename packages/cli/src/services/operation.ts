import { appendFileSync } from "node:fs";
import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline/promises";
import { userInfo } from "node:os";
import { ConfigError } from "@daon/api";
import { privateDir, UsageError } from "../deployment.js";

/**
 * A check, step or threshold failed, or a typed confirmation was wrong: exit 1 (ops.md §0).
 * `result` carries what the operator needs next (the backup that holds the old state, …).
 */
export class OperationFailed extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly result: Record<string, unknown> = {},
    /** Printed on stdout before the error (a verify's table of checks, …). */
    readonly human = "",
  ) {
    super(message);
  }
}

export interface CommandOutcome {
  /** Fields of the `--json` document. */
  result: Record<string, unknown>;
  /** What a person reads on stdout. */
  human: string;
}

/**
 * Runs one operator command: files it writes are private (umask 077), the outcome is printed
 * once (a JSON document `{command, ok, exitCode, …}` with `--json`), the exit status follows
 * ops.md §0, and a mutating command leaves one line in `logs/ops-audit.log`.
 */
export async function runCommand(
  options: { command: string; json: boolean; audit?: { stateDir: string; details?: Record<string, unknown> } },
  body: () => Promise<CommandOutcome>,
): Promise<void> {
  process.umask(0o077);
  const started = new Date();
  let exitCode = 0;
  let outcome: CommandOutcome;
  let error: string | undefined;
  try {
    outcome = await body();
  } catch (thrown) {
    const failure = thrown as Error;
    exitCode = failure instanceof UsageError || failure instanceof ConfigError ? 2 : 1;
    error = failure.message;
    outcome = failure instanceof OperationFailed ? { result: failure.result, human: failure.human } : { result: {}, human: "" };
    process.stderr.write(`daon ${options.command}: ${failure.message}\n`);
    if (!(failure instanceof UsageError || failure instanceof OperationFailed || failure instanceof ConfigError) && process.env.DAON_DEBUG)
      process.stderr.write(`${failure.stack}\n`);
  }
  if (options.json) {
    const document = { command: options.command, ok: exitCode === 0, exitCode, ...outcome.result, ...(error ? { error } : {}) };
    process.stdout.write(`${JSON.stringify(document)}\n`);
  } else if (outcome.human) process.stdout.write(`${outcome.human}\n`);
  if (options.audit) {
    await appendAudit(options.audit.stateDir, {
      time: started.toISOString(),
      finishedAt: new Date().toISOString(),
      command: options.command,
      user: operator(),
      ...options.audit.details,
      result: exitCode === 0 ? "ok" : "failed",
      exitCode,
      ...(error ? { error } : {}),
    }).catch(() => {});
  }
  process.exitCode = exitCode;
}

function operator(): string | null {
  try {
    return process.env.SUDO_USER ?? userInfo().username;
  } catch {
    return null;
  }
}

/** One JSON line per mutating command in `logs/ops-audit.log` (ops.md §0); tools never delete logs. */
export async function appendAudit(stateDir: string, entry: Record<string, unknown>): Promise<void> {
  await privateDir(join(stateDir, "logs"));
  await appendFile(join(stateDir, "logs", "ops-audit.log"), `${JSON.stringify(entry)}\n`, { mode: 0o600 });
}

/** `[n/N] …` progress on stderr, mirrored with a timestamp to a log file when one is given. */
export class Progress {
  constructor(
    private readonly total: number,
    private readonly logFile?: string,
  ) {}

  step(n: number, text: string): void {
    this.#write(`[${n}/${this.total}] ${text}`);
  }

  note(text: string): void {
    this.#write(`      ${text}`);
  }

  #write(line: string): void {
    process.stderr.write(`${line}\n`);
    if (this.logFile) appendFileSync(this.logFile, `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
  }
}

/** Questions on a TTY (ops.md §0: prompts only there, each with a flag). */
export class Prompter {
  #lines: Interface | undefined;

  static get interactive(): boolean {
    return process.stdin.isTTY === true;
  }

  async ask(question: string): Promise<string> {
    this.#lines ??= createInterface({ input: process.stdin, output: process.stderr, terminal: false });
    const answer = await this.#lines.question(question);
    return answer.trim();
  }

  close(): void {
    this.#lines?.close();
  }
}

/**
 * A typed confirmation (never skipped by `--yes`): the flag's value when given, else the answer
 * on a TTY; off a TTY without the flag it is a usage error (exit 2). A wrong answer is exit 1.
 */
export async function confirmTyped(
  prompter: Prompter,
  options: { question: string; expected: string; flag: string; given?: string },
): Promise<void> {
  let answer = options.given;
  if (answer === undefined) {
    if (!Prompter.interactive) throw new UsageError(`${options.flag} is required when not on a TTY`);
    answer = await prompter.ask(options.question);
  }
  if (answer !== options.expected) {
    throw new OperationFailed(
      `confirmation ${JSON.stringify(answer)} is not ${JSON.stringify(options.expected)}: aborted, nothing changed`,
    );
  }
}

/** The confirmation every destructive command asks last: the current chain ID, typed or given with --confirm-chain. */
export function confirmChainId(prompter: Prompter, chainId: string, given: string | undefined): Promise<void> {
  return confirmTyped(prompter, {
    question: `Type the current chain ID "${chainId}" to confirm: `,
    expected: chainId,
    flag: "--confirm-chain",
    given,
  });
}

/** SIGINT during a long operation: the current step finishes first, then the operation stops between steps. */
export class Interruption {
  #requested = false;
  readonly #onSignal = () => {
    if (this.#requested) process.exit(130);
    this.#requested = true;
    process.stderr.write("\nSIGINT: finishing the current step first (again to exit at once)\n");
  };

  constructor() {
    process.on("SIGINT", this.#onSignal);
  }

  /** Throws between steps once SIGINT was received. */
  check(): void {
    if (this.#requested) throw new OperationFailed("interrupted by SIGINT");
  }

  dispose(): void {
    process.off("SIGINT", this.#onSignal);
  }
}

/** `YYYYMMDD_HHMMSS` in UTC: backup set and result directory names. */
export function utcStamp(now = new Date()): string {
  return now.toISOString().replace(/[-:]/g, "").replace("T", "_").slice(0, 15);
}
