import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import {
  type AiTrainingPolicy,
  DaonApiError,
  DaonClient,
  DaonError,
  hashFile,
  hashText,
  parseContentHash,
  type ProtectResult,
} from "@daon/sdk";
import type { Command } from "commander";
import { deploymentPaths, readEnv, UsageError } from "../deployment.js";

type Print = (result: Record<string, unknown>, human: string) => void;

/** The work a command is given: a file path, `--text`, `--hash`, or `-` for standard input. */
export type Work = { kind: "file"; path: string; bytes: Uint8Array } | { kind: "text"; text: string } | { kind: "hash"; hash: string };

export async function workFrom(file: string | undefined, options: { text?: string; hash?: string }): Promise<Work> {
  const given = [file !== undefined, options.text !== undefined, options.hash !== undefined].filter(Boolean).length;
  if (given !== 1) throw new UsageError("give exactly one of: a file path (or - for standard input), --text TEXT, --hash HASH");
  if (options.text !== undefined) return { kind: "text", text: options.text };
  if (options.hash !== undefined) {
    try {
      return { kind: "hash", hash: parseContentHash(options.hash) };
    } catch (error) {
      throw new UsageError(`--hash: ${(error as Error).message}`);
    }
  }
  if (file === "-") {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return { kind: "file", path: "-", bytes: new Uint8Array(Buffer.concat(chunks)) };
  }
  if (!existsSync(file!)) throw new UsageError(`no such file: ${file}`);
  return { kind: "file", path: file!, bytes: new Uint8Array(await readFile(file!)) };
}

/** The content hash of a work, computed here. */
export async function hashOf(work: Work): Promise<string> {
  try {
    return work.kind === "hash" ? work.hash : work.kind === "text" ? hashText(work.text) : await hashFile(work.bytes);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The API to talk to: `--api`, else DAON_API_URL, else this deployment's port on localhost. */
export function apiUrlFor(program: Command, given: string | undefined): string {
  if (given) return given;
  if (process.env.DAON_API_URL) return process.env.DAON_API_URL;
  const { envFile } = deploymentPaths({ envFile: program.opts().envFile });
  const env = existsSync(envFile) ? readEnv(envFile) : {};
  return `http://127.0.0.1:${process.env.PORT ?? env.PORT ?? "3000"}`;
}

/** An API refusal as one line, with the request id to find it in the logs. */
export function describeApiError(error: unknown): string {
  if (error instanceof DaonApiError)
    return `${error.code}: ${error.message.replace(/^[A-Z_]+: /, "")}${error.requestId ? ` (request ${error.requestId})` : ""}`;
  return (error as Error).message;
}

function describe(result: ProtectResult, proofFile: string | undefined): string {
  const lines = [
    result.existing
      ? `already registered: ${result.ledgerContentHash} (the first registration is kept)`
      : `protected: ${result.ledgerContentHash}`,
    result.status === "confirmed"
      ? `  on the ledger at height ${result.blockHeight}, tx ${result.txHash} (${result.blockTime})`
      : "  accepted; waiting for the ledger (check later with daon verify)",
    `  licence ${result.license}, AI training ${result.ai_training_policy}`,
    `  verify: ${result.verificationUrl}`,
  ];
  if (proofFile) lines.push(`  proof saved to ${proofFile} (check it offline: daon verify --offline ${proofFile})`);
  return lines.join("\n");
}

export function registerProtect(program: Command, print: Print): void {
  program
    .command("protect [file]")
    .description("register a work on the ledger; by default only its hash (computed here) is sent")
    .option("--text <text>", "protect this text (canonicalised as the API does)")
    .option("--hash <hash>", "protect a hash computed elsewhere (64 hex, optionally sha256:)")
    .option("--title <title>", "title, shown on the verification page (never on the ledger)")
    .option(
      "--license <licence>",
      "liberation_v1 (default), cc0, cc-by, cc-by-sa, cc-by-nc, cc-by-nc-sa, cc-by-nd, all-rights-reserved, public-domain",
    )
    .option("--ai-policy <policy>", "AI training: prohibited (default), contact_required, open")
    .option("--licensing-email <email>", "where to ask for licences (needed for contact_required, or --licensing-uri)")
    .option("--licensing-uri <url>", "a page about licensing the work")
    .option("--upload", "send the content itself instead of only its hash")
    .option("--no-wait", "answer at once; do not wait for the ledger")
    .option("--proof <file>", "save the proof bundle there once the work is on the ledger")
    .option("--api <url>", "the DAON API (default DAON_API_URL, else http://127.0.0.1:<PORT from .env>)")
    .option("--api-key <key>", "a platform key (default DAON_API_KEY); then --username names the platform's user")
    .option("--username <name>", "the platform user the work is registered for")
    .action(async (file: string | undefined, options) => {
      const work = await workFrom(file, options);
      const apiKey = options.apiKey ?? process.env.DAON_API_KEY;
      const daon = new DaonClient({ baseUrl: apiUrlFor(program, options.api), apiKey, timeoutMs: 45_000 });
      // No title unless given: a file's name can say more than its owner wants public.
      const title: string | undefined = options.title;
      const terms = {
        ...(options.license ? { license: options.license } : {}),
        ...(options.aiPolicy ? { ai_training_policy: options.aiPolicy as AiTrainingPolicy } : {}),
        ...(options.licensingEmail ? { licensing_email: options.licensingEmail } : {}),
        ...(options.licensingUri ? { licensing_uri: options.licensingUri } : {}),
      };
      const metadata = { ...(title ? { title } : {}), type: work.kind };
      const wait = options.wait === false ? false : 30;
      let result: ProtectResult;
      try {
        if (options.username) {
          const body = options.upload && work.kind === "text" ? { content: work.text } : { contentHash: await hashOf(work) };
          result = await daon.platform.protect({ username: options.username, ...body, metadata, ...terms }, { wait });
        } else if (options.upload && work.kind === "text") {
          result = await daon.protect({ content: work.text, metadata, ...terms }, { wait });
        } else if (options.upload && work.kind === "file") {
          result = await daon.protectFile(work.bytes, { title, ...terms }, { upload: true, wait });
        } else {
          result = await daon.protectHash({ contentHash: await hashOf(work), metadata, ...terms }, { wait });
        }
      } catch (error) {
        if (error instanceof DaonError) throw new Error(describeApiError(error));
        throw error;
      }
      let proofFile: string | undefined;
      if (options.proof) {
        if (result.status !== "confirmed")
          throw new Error(
            `not on the ledger yet, so there is no proof to save; run again later with --hash ${result.contentHash} --proof ${options.proof}`,
          );
        const bundle = await daon.proof(result.contentHash).catch((error) => {
          throw new Error(`the proof could not be fetched: ${describeApiError(error)}`);
        });
        await writeFile(options.proof, `${JSON.stringify(bundle, null, 2)}\n`);
        proofFile = options.proof;
      }
      const { blockchain: _legacy, ...registration } = result;
      print({ command: "protect", ...registration, ...(proofFile ? { proofFile } : {}) }, describe(result, proofFile));
    });
}
