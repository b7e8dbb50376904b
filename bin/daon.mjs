#!/usr/bin/env node
// The `daon` command: runs the CLI's TypeScript sources through tsx, from any directory.
import { register } from "tsx/esm/api";

register();
await import("../packages/cli/src/main.ts");
