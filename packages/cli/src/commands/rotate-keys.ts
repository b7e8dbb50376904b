import { createInterface } from "node:readline/promises";
import { Argument, type Command } from "commander";
import { deploymentPaths, readEnv, UsageError } from "../deployment.js";
import { ROTATION_KINDS, type RotationKind, type RotationResult, rotateKeys, rotationPlan } from "../rotation/rotate.js";

function describe(result: RotationResult): string {
  if (result.dryRun)
    return [
      `rotate-keys ${result.kind} on ${result.chainId} (dry run, nothing written):`,
      ...result.plan.map((step, i) => `  ${i + 1}. ${step}`),
    ].join("\n");
  const changed = Object.entries(result.fingerprints.after).map(
    ([name, fp]) => `  ${name}: ${result.fingerprints.before[name] ?? "unset"} → ${fp ?? "removed"}`,
  );
  return [
    `rotated ${result.kind} on ${result.chainId}; ${result.reloaded}; ${result.instances.length} instance(s) report the new fingerprints`,
    ...changed,
    ...(result.addresses
      ? [`  wallet: ${result.addresses.old} → ${result.addresses.new}${result.txHash ? ` (successor tx ${result.txHash})` : ""}`]
      : []),
    ...result.notes.map((note) => `note: ${note}`),
    ...(result.vault.length > 0 ? ["Update your vault:", ...result.vault.map((line) => `  ${line}`)] : []),
    ...(result.github.length > 0 ? ["Update GitHub Secrets:", ...result.github.map((line) => `  ${line}`)] : []),
    `record: ${result.recordFile}`,
  ].join("\n");
}

/** Registers `daon rotate-keys secrets|database|wallet|totp-key` (ops.md §8). */
export function registerRotateKeys(program: Command, print: (result: Record<string, unknown>, human: string) => void): void {
  program
    .command("rotate-keys")
    .description("rotate secrets, the database password, the API wallet or the encryption key, without downtime")
    .addArgument(new Argument("<kind>", "what to rotate").choices([...ROTATION_KINDS]))
    .option("--dry-run", "show the steps and check the preconditions; write nothing")
    .option("--yes", "answer the y/N prompt")
    .option("--finish", "secrets: drop the *_PREVIOUS kept for the overlap")
    .option("--resume", "wallet: carry on with an interrupted rotation")
    .option("--force", "secrets --finish: before the 24 h overlap has passed")
    .action(async (kind: RotationKind, options) => {
      const globals = program.opts();
      const deployment = deploymentPaths({ envFile: globals.envFile });
      if (!options.dryRun && !options.yes && !globals.yes) {
        if (!process.stdin.isTTY) throw new UsageError("rotate-keys: --yes is required off a terminal");
        const chain = readEnv(deployment.envFile).CHAIN_ID ?? "?";
        process.stderr.write(
          `${rotationPlan(kind, readEnv(deployment.envFile), options)
            .map((s) => `  - ${s}`)
            .join("\n")}\n`,
        );
        const prompt = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await prompt.question(`Rotate ${kind} on ${chain}? [y/N] `);
        prompt.close();
        if (!/^y(es)?$/i.test(answer.trim())) {
          process.stderr.write("nothing changed\n");
          process.exitCode = 1;
          return;
        }
      }
      const result = await rotateKeys(deployment, kind, { ...options, progress: (line) => process.stderr.write(`${line}\n`) });
      print({ command: "rotate-keys", ...result }, describe(result));
    });
}
