/** One line of a bench's result table. */
export interface BenchRow {
  figure: string;
  value: number | undefined;
  unit: string;
  /** The figure must be at least (or at most) this to meet the target. */
  target?: { atLeast?: number; atMost?: number };
  /** Digits after the decimal point (default: 0 above 100, else 2). */
  digits?: number;
}

export interface BenchSection {
  title: string;
  rows: BenchRow[];
  /** Conditions and caveats the reader needs to judge the figures. */
  notes: string[];
  /** Free-form blocks printed after the table (profiles, per-run details). */
  details: string[];
}

export function formatNumber(value: number | undefined, digits?: number): string {
  if (value === undefined || Number.isNaN(value)) return "n/a";
  const d = digits ?? (Math.abs(value) >= 100 ? 0 : 2);
  return value.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}

function targetText(row: BenchRow): string {
  if (!row.target) return "—";
  const parts: string[] = [];
  if (row.target.atLeast !== undefined) parts.push(`≥ ${formatNumber(row.target.atLeast, 0)}`);
  if (row.target.atMost !== undefined) parts.push(`≤ ${formatNumber(row.target.atMost, 0)}`);
  return `${parts.join(" and ")} ${row.unit}`.trim();
}

export function verdict(row: BenchRow): "met" | "NOT met" | "—" {
  if (!row.target) return "—";
  if (row.value === undefined || Number.isNaN(row.value)) return "NOT met";
  const { atLeast, atMost } = row.target;
  const ok = (atLeast === undefined || row.value >= atLeast) && (atMost === undefined || row.value <= atMost);
  return ok ? "met" : "NOT met";
}

export function formatTable(headers: string[], rows: string[][], alignRight: boolean[] = []): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (alignRight[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (alignRight[i] ? `${"-".repeat(w + 1)}:` : "-".repeat(w + 2))).join("|")}|`;
  return [line(headers), rule, ...rows.map(line)].join("\n");
}

export function formatSection(section: BenchSection): string {
  const table = formatTable(
    ["Figure", "Value", "Unit", "Target", "Result"],
    section.rows.map((row) => [row.figure, formatNumber(row.value, row.digits), row.unit, targetText(row), verdict(row)]),
    [false, true, false, false, false],
  );
  const out = [`## ${section.title}`, "", table, ""];
  if (section.notes.length) out.push(...section.notes.map((n) => `- ${n}`), "");
  for (const detail of section.details) out.push(detail, "");
  return out.join("\n");
}
