import type { TxEvent } from "../state/app.js";

/** One condition of CometBFT's event query language. */
export interface Condition {
  key: string;
  op: "=" | "<" | "<=" | ">" | ">=" | "CONTAINS" | "EXISTS";
  value: string;
}

const CONDITION = /^\s*([A-Za-z0-9_.\-/]+)\s*(?:(<=|>=|=|<|>|CONTAINS)\s*(?:'([^']*)'|(-?\d+(?:\.\d+)?))|(EXISTS))\s*$/;
const MAX_QUERY_LENGTH = 512;
const MAX_CONDITIONS = 16;

export class QueryError extends Error {}

/** Parses `a.b='x' AND tx.height>5`; throws QueryError with what is wrong. */
export function parseQuery(query: string): Condition[] {
  if (typeof query !== "string" || query.trim() === "") throw new QueryError("query is empty");
  if (query.length > MAX_QUERY_LENGTH) throw new QueryError(`query longer than ${MAX_QUERY_LENGTH} characters`);
  // The runbook's shell quoting delivers its query wrapped in single quotes; such a query means its inside.
  const unwrapped = /^'([^']+)'$/.exec(query.trim())?.[1] ?? query;
  const parts = splitOnAnd(unwrapped);
  if (parts.length > MAX_CONDITIONS) throw new QueryError(`more than ${MAX_CONDITIONS} conditions`);
  return parts.map((part) => {
    const match = CONDITION.exec(part);
    if (!match) throw new QueryError(`cannot parse condition ${JSON.stringify(part.trim())}`);
    const [, key, op, quoted, number, exists] = match;
    if (exists) return { key, op: "EXISTS", value: "" };
    return { key, op: op as Condition["op"], value: quoted ?? number };
  });
}

// AND inside quoted values is part of the value, so split outside quotes only.
function splitOnAnd(query: string): string[] {
  const parts: string[] = [];
  let quoted = false;
  let start = 0;
  for (let i = 0; i < query.length; i++) {
    if (query[i] === "'") quoted = !quoted;
    if (!quoted && /^\sAND\s/.test(query.slice(i, i + 5))) {
      parts.push(query.slice(start, i));
      start = i + 5;
      i += 4;
    }
  }
  if (quoted) throw new QueryError("unterminated quote in query");
  parts.push(query.slice(start));
  return parts;
}

/** The attributes a tx or block matches against: composite keys to their values. */
export function attributeMap(events: readonly TxEvent[], implicit: Record<string, string>): Map<string, string[]> {
  const map = new Map<string, string[]>();
  const add = (key: string, value: string) => map.set(key, [...(map.get(key) ?? []), value]);
  for (const [key, value] of Object.entries(implicit)) add(key, value);
  for (const event of events) for (const { key, value } of event.attributes) add(`${event.type}.${key}`, value);
  return map;
}

export function matches(conditions: readonly Condition[], attributes: Map<string, string[]>): boolean {
  return conditions.every((condition) => {
    const values = attributes.get(condition.key);
    if (!values) return false;
    return values.some((value) => holds(condition, value));
  });
}

function holds({ op, value: expected }: Condition, actual: string): boolean {
  switch (op) {
    case "EXISTS":
      return true;
    case "CONTAINS":
      return actual.includes(expected);
    case "=":
      return actual === expected || (isNumber(actual) && isNumber(expected) && Number(actual) === Number(expected));
    default: {
      if (!isNumber(actual) || !isNumber(expected)) return false;
      const a = Number(actual);
      const b = Number(expected);
      return op === "<" ? a < b : op === "<=" ? a <= b : op === ">" ? a > b : a >= b;
    }
  }
}

function isNumber(text: string): boolean {
  return /^-?\d+(\.\d+)?$/.test(text);
}

/** The inclusive height range the conditions on `key` allow. */
export function heightRange(conditions: readonly Condition[], key: string, latest: number): [number, number] {
  let from = 1;
  let to = latest;
  for (const { key: k, op, value } of conditions) {
    if (k !== key || !isNumber(value)) continue;
    const n = Math.floor(Number(value));
    if (op === "=") [from, to] = [Math.max(from, n), Math.min(to, n)];
    if (op === ">") from = Math.max(from, n + 1);
    if (op === ">=") from = Math.max(from, n);
    if (op === "<") to = Math.min(to, n - 1);
    if (op === "<=") to = Math.min(to, n);
  }
  return [from, to];
}
