#!/usr/bin/env -S node --
// The `daon` command: runs the CLI's TypeScript sources through tsx, from any directory.
// "node --" ends Node's own options: Node 20 would otherwise take the CLI's --env-file for itself.
import { register } from "tsx/esm/api";

register();
await import("../packages/cli/src/main.ts");
