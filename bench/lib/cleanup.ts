import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

/** Children and temp dirs the bench owns: removed on normal end, on error and on Ctrl-C. */
const children = new Set<ChildProcess>();
const dirs = new Set<string>();

export function ownChild(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
}

export function ownDir(dir: string): void {
  dirs.add(dir);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Synchronous, so it can run from an 'exit' handler: kills our children (by their pid) and deletes our temp dirs. */
export function cleanUpNow(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  children.clear();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  dirs.clear();
}

let installed = false;

export function installCleanupHandlers(): void {
  if (installed) return;
  installed = true;
  process.on("exit", cleanUpNow);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
      cleanUpNow();
      process.exit(130);
    });
  }
}
