import { existsSync, readFileSync } from "node:fs";
import { homePaths } from "@daon/chain";
import {
  DaonClient,
  DaonError,
  type GenesisLike,
  hashRawText,
  type ProofBundle,
  ProofError,
  type TrustedValidator,
  trustedValidator,
  type Verification,
  verifyProof,
} from "@daon/sdk";
import type { Command } from "commander";
import { deploymentPaths, UsageError } from "../deployment.js";
import { apiUrlFor, describeApiError, hashOf, type Work, workFrom } from "./protect.js";

type Print = (result: Record<string, unknown>, human: string) => void;

/** What a proof is checked against: `--validator-key` (+ `--chain-id`), `--genesis FILE`, else this deployment's genesis. */
function trustFrom(
  program: Command,
  options: { genesis?: string; validatorKey?: string; chainId?: string },
): { trusted: TrustedValidator; source: string } {
  try {
    if (options.validatorKey) {
      if (!options.chainId) throw new UsageError("--validator-key needs --chain-id");
      const genesis = {
        chainId: options.chainId,
        validators: [{ pub_key: { type: "tendermint/PubKeyEd25519", value: options.validatorKey } }],
      };
      return { trusted: trustedValidator(genesis), source: "--validator-key" };
    }
    const path = options.genesis ?? homePaths(deploymentPaths({ envFile: program.opts().envFile }).nodeHome).genesis;
    if (!existsSync(path)) throw new UsageError(`no genesis at ${path}: give --genesis FILE, or --validator-key KEY --chain-id ID`);
    return { trusted: trustedValidator(JSON.parse(readFileSync(path, "utf8")) as GenesisLike), source: path };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`the trusted validator could not be read: ${(error as Error).message}`);
  }
}

function readBundle(path: string): ProofBundle {
  if (!existsSync(path)) throw new UsageError(`no such proof file: ${path}`);
  try {
    return JSON.parse(readFileSync(path, "utf8")) as ProofBundle;
  } catch (error) {
    throw new UsageError(`${path} is not JSON: ${(error as Error).message}`);
  }
}

/** The hashes a work may be registered under: text by its canonical hash, then its raw UTF-8. */
async function candidateHashes(work: Work): Promise<string[]> {
  const hash = await hashOf(work);
  if (work.kind !== "text") return [hash];
  try {
    const raw = hashRawText(work.text);
    return raw === hash ? [hash] : [hash, raw];
  } catch {
    return [hash];
  }
}

export function registerVerify(program: Command, print: Print): void {
  program
    .command("verify [file]")
    .description(
      "look a work up on DAON, or with --offline check a proof file without any network; exit 1 if not registered or the proof fails",
    )
    .option("--text <text>", "look up this text")
    .option("--hash <hash>", "look up this content hash")
    .option("--offline <proof.json>", "check this proof bundle offline against the genesis validator (no network)")
    .option("--genesis <file>", "the chain's genesis.json to trust (default this deployment's ledger home)")
    .option("--validator-key <base64>", "trust this Ed25519 validator key instead of a genesis file")
    .option("--chain-id <id>", "the chain the --validator-key belongs to")
    .option("--api <url>", "the DAON API (default DAON_API_URL, else http://127.0.0.1:<PORT from .env>)")
    .action(async (file: string | undefined, options) => {
      if (options.offline) {
        const bundle = readBundle(options.offline);
        const { trusted, source } = trustFrom(program, options);
        // A work given too must be the one the proof is about.
        const expected =
          file !== undefined || options.text !== undefined || options.hash !== undefined
            ? await candidateHashes(await workFrom(file, options))
            : undefined;
        let verified: ReturnType<typeof verifyProof>;
        try {
          verified = verifyProof(bundle, trusted);
        } catch (error) {
          if (!(error instanceof ProofError)) throw error;
          print(
            { command: "verify", ok: false, exitCode: 1, offline: true, valid: false, reason: error.message },
            `proof INVALID: ${error.message}`,
          );
          process.exitCode = 1;
          return;
        }
        const matches = expected === undefined || expected.includes(bundle.contentHash);
        const ok = verified.present && matches;
        const result = {
          command: "verify",
          ok,
          exitCode: ok ? 0 : 1,
          offline: true,
          valid: true,
          present: verified.present,
          contentHash: bundle.contentHash,
          chainId: trusted.chainId,
          trustedValidatorFrom: source,
          ...(verified.present
            ? {
                blockHeight: verified.height,
                txHash: verified.txHash,
                record: {
                  owner: verified.record.owner,
                  license: verified.record.license,
                  aiTrainingPolicy: verified.record.aiTrainingPolicy,
                  timestamp: new Date(Number(verified.record.timestamp) * 1000).toISOString(),
                  platform: verified.record.platform,
                },
              }
            : { provedAbsentAt: verified.height }),
          ...(matches ? {} : { mismatch: "the proof is for another content hash than the work given" }),
        };
        const human = !matches
          ? `proof valid, but for sha256:${bundle.contentHash}, not for the work given`
          : verified.present
            ? [
                `proof valid: sha256:${bundle.contentHash} is registered on chain ${trusted.chainId}`,
                `  block ${verified.height}, tx ${verified.txHash}, registered ${new Date(Number(verified.record.timestamp) * 1000).toISOString()}`,
                `  owner ${verified.record.owner || "(anonymous)"}, licence ${verified.record.license}, AI training ${verified.record.aiTrainingPolicy}`,
                `  checked offline against the validator in ${source}`,
              ].join("\n")
            : `proof valid: sha256:${bundle.contentHash} is NOT registered (state at height ${verified.height})`;
        print(result, human);
        process.exitCode = ok ? 0 : 1;
        return;
      }

      const work = await workFrom(file, options);
      const daon = new DaonClient({ baseUrl: apiUrlFor(program, options.api) });
      let found: Verification = { isValid: false, contentHash: "" };
      const hashes = await candidateHashes(work);
      try {
        for (const hash of hashes) {
          found = await daon.verify(hash);
          if (found.isValid) break;
        }
      } catch (error) {
        if (error instanceof DaonError) throw new Error(describeApiError(error));
        throw error;
      }
      if (!found.isValid) {
        print(
          { command: "verify", ok: false, exitCode: 1, registered: false, contentHash: hashes[0] },
          `not registered: sha256:${hashes[0]}`,
        );
        process.exitCode = 1;
        return;
      }
      const { blockchain: _legacy, ...registration } = found;
      const human = [
        `registered: ${found.ledgerContentHash} (${found.status === "confirmed" ? `on the ledger at height ${found.blockHeight}, tx ${found.txHash}` : "waiting for the ledger"})`,
        `  registered ${found.timestamp}; licence ${found.license}, AI training ${found.ai_training_policy}; owner ${found.owner ?? "(anonymous)"}`,
        `  ${found.verificationUrl}`,
      ].join("\n");
      print({ command: "verify", registered: true, ...registration }, human);
    });
}
