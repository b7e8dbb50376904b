import { existsSync, readFileSync } from "node:fs";
import { writeFileAtomic } from "@daon/chain";

/**
 * Changes some `NAME=value` lines of a settings file and keeps every other line as it was
 * (comments, order); `undefined` removes the line. Written atomically, mode 0600.
 */
export async function updateSettingsFile(path: string, changes: Record<string, string | undefined>): Promise<void> {
  const lines = existsSync(path) ? readFileSync(path, "utf8").split("\n") : [];
  if (lines.at(-1) === "") lines.pop();
  const pending = new Map(Object.entries(changes));
  const kept: string[] = [];
  for (const line of lines) {
    const name = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line)?.[1];
    if (name && pending.has(name)) {
      const value = pending.get(name);
      pending.delete(name);
      if (value !== undefined) kept.push(`${name}=${value}`);
      continue;
    }
    kept.push(line);
  }
  for (const [name, value] of pending) if (value !== undefined) kept.push(`${name}=${value}`);
  await writeFileAtomic(path, `${kept.join("\n")}\n`);
}
