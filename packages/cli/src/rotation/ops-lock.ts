import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { privateDir, UsageError } from "../deployment.js";

/**
 * `run/ops.lock` (ops.md §0): one mutating command at a time. A lock whose process is gone
 * is taken over; a live one refuses with exit 2, naming who holds it.
 */
export async function takeOpsLock(stateDir: string, command: string): Promise<() => Promise<void>> {
  await privateDir(join(stateDir, "run"));
  const path = join(stateDir, "run", "ops.lock");
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(path, "wx", 0o600);
      await file.writeFile(JSON.stringify({ pid: process.pid, command, since: new Date().toISOString() }));
      await file.close();
      return () => rm(path, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const holder = await readFile(path, "utf8")
        .then((text) => JSON.parse(text) as { pid: number; command: string; since: string })
        .catch(() => undefined);
      if (holder && isAlive(holder.pid))
        throw new UsageError(`${path} is held by pid ${holder.pid} (${holder.command}, since ${holder.since}): wait for it to finish`);
      await rm(path, { force: true }); // left by a process that died
    }
  }
  throw new UsageError(`cannot take ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
