import type { UsageRow } from "@daon/sdk";

const HOUR = 3600_000;
const DAY = 24 * HOUR;

interface Bucket {
  start: number;
  success: number;
  errors: number;
}

/** Calls per day (or per hour over a day or less), successes and errors stacked. */
function buckets(rows: UsageRow[], start: number, end: number): { size: number; buckets: Bucket[] } {
  const size = end - start <= DAY ? HOUR : DAY;
  const first = Math.floor(start / size) * size;
  const count = Math.max(1, Math.ceil((end - first) / size));
  const result: Bucket[] = Array.from({ length: count }, (_, i) => ({ start: first + i * size, success: 0, errors: 0 }));
  for (const row of rows) {
    const at = row.hour ? Date.parse(row.hour) : Number.NaN;
    const index = Math.floor((at - first) / size);
    if (!(index >= 0 && index < count)) continue;
    result[index].success += row.total_success;
    result[index].errors += row.total_errors;
  }
  return { size, buckets: result };
}

const label = (start: number, size: number) =>
  size === HOUR ? `${new Date(start).toISOString().slice(11, 13)}:00` : new Date(start).toISOString().slice(5, 10);

/**
 * Usage over time as inline SVG (no chart library, no external script: the CSP stays
 * `default-src 'self'`), with the same figures in a table for screen readers.
 */
export function UsageChart(props: { rows: UsageRow[]; start: string; end: string }) {
  const start = Date.parse(props.start);
  const end = Date.parse(props.end);
  const { size, buckets: data } = buckets(props.rows, start, end);
  const max = Math.max(1, ...data.map((b) => b.success + b.errors));
  const width = 640;
  const height = 200;
  const pad = { left: 40, right: 8, top: 10, bottom: 28 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const barW = plotW / data.length;
  const y = (value: number) => pad.top + plotH - (value / max) * plotH;
  const every = Math.ceil(data.length / 8);
  return (
    <figure class="usage-chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby="usage-chart-title" focusable="false">
        <title id="usage-chart-title">
          Calls per {size === HOUR ? "hour" : "day"}: {data.reduce((s, b) => s + b.success + b.errors, 0)} in total, at most {max} in one{" "}
          {size === HOUR ? "hour" : "day"}
        </title>
        <line x1={pad.left} y1={pad.top + plotH} x2={width - pad.right} y2={pad.top + plotH} class="axis" />
        <text x={pad.left - 6} y={pad.top + 4} class="tick" text-anchor="end">
          {max}
        </text>
        <text x={pad.left - 6} y={pad.top + plotH} class="tick" text-anchor="end">
          0
        </text>
        {data.map((bucket, i) => {
          const x = pad.left + i * barW + barW * 0.1;
          const w = Math.max(1, barW * 0.8);
          return (
            <g key={bucket.start}>
              <rect x={x} y={y(bucket.success)} width={w} height={pad.top + plotH - y(bucket.success)} class="bar-success" />
              <rect
                x={x}
                y={y(bucket.success + bucket.errors)}
                width={w}
                height={y(bucket.success) - y(bucket.success + bucket.errors)}
                class="bar-error"
              />
              {i % every === 0 ? (
                <text x={x + w / 2} y={height - 8} class="tick" text-anchor="middle">
                  {label(bucket.start, size)}
                </text>
              ) : null}
            </g>
          );
        })}
      </svg>
      <figcaption>
        <span class="legend legend-success">successful</span> <span class="legend legend-error">refused or failed</span>
      </figcaption>
      <details>
        <summary>The figures as a table</summary>
        <table>
          <thead>
            <tr>
              <th scope="col">{size === HOUR ? "Hour (UTC)" : "Day (UTC)"}</th>
              <th scope="col">Successful</th>
              <th scope="col">Errors</th>
            </tr>
          </thead>
          <tbody>
            {data.map((bucket) => (
              <tr key={bucket.start}>
                <td>
                  {new Date(bucket.start)
                    .toISOString()
                    .slice(0, size === HOUR ? 13 : 10)
                    .replace("T", " ")}
                </td>
                <td>{bucket.success}</td>
                <td>{bucket.errors}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
