import type { Stats } from "@daon/sdk";
import { useEffect, useState } from "preact/hooks";
import { Alert, describeError, formatTime, shortHash, TableWrap, usePageTitle } from "../components/ui.js";
import { Link } from "../router.js";
import { client } from "../session.js";
import { aiPolicyLabel, licenceLabel } from "../terms.js";

const REFRESH_MS = 10_000;

/** The network's status from `/api/v1/stats`, refreshed every few seconds. */
export function StatusPage() {
  usePageTitle("Network status");
  const [stats, setStats] = useState<Stats["stats"] | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    let stopped = false;
    const load = () =>
      client
        .stats({ retries: 0 })
        .then((answer) => {
          if (stopped) return;
          setStats(answer.stats);
          setError(undefined);
        })
        .catch((caught) => !stopped && setError(describeError(caught)));
    void load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);

  return (
    <>
      <h1 tabIndex={-1}>Network status</h1>
      {error ? <Alert kind="error">{error}</Alert> : null}
      {!stats ? (
        <p aria-live="polite">Loading…</p>
      ) : (
        <>
          <section class="tiles" aria-label="The ledger">
            <Tile label="Chain ID" value={stats.chainId} mono />
            <Tile label="Ledger height" value={stats.latestHeight === null ? "unreachable" : String(stats.latestHeight)} />
            <Tile label="Latest block" value={formatTime(stats.latestBlockTime)} small />
            <Tile label="Registrations" value={stats.totalProtected.toLocaleString()} />
            <Tile label="Confirmed" value={stats.confirmed.toLocaleString()} />
            <Tile label="Last 24 hours" value={stats.last24h.toLocaleString()} />
            <Tile label="Waiting for the ledger" value={stats.pending.toLocaleString()} />
          </section>
          <section class="card" aria-labelledby="licences-heading">
            <h2 id="licences-heading">By licence and AI policy</h2>
            <div class="two-columns">
              <Counts label="Licence" counts={stats.byLicense} name={licenceLabel} />
              <Counts label="AI policy" counts={stats.byAiTrainingPolicy} name={aiPolicyLabel} />
            </div>
          </section>
          <section class="card" aria-labelledby="recent-heading">
            <h2 id="recent-heading">Recent registrations</h2>
            {stats.recentProtections.length === 0 ? (
              <p>None yet.</p>
            ) : (
              <TableWrap label="Recent registrations">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Hash</th>
                      <th scope="col">Status</th>
                      <th scope="col">Licence</th>
                      <th scope="col">Registered</th>
                      <th scope="col">Height</th>
                    </tr>
                  </thead>
                  <tbody>
                    {stats.recentProtections.map((work) => (
                      <tr key={work.contentHash}>
                        <td>
                          <Link href={`/verify/sha256:${work.contentHash}`} class="mono">
                            {shortHash(work.contentHash)}
                          </Link>
                        </td>
                        <td>{work.status}</td>
                        <td>{licenceLabel(work.license)}</td>
                        <td>{formatTime(work.timestamp)}</td>
                        <td>{work.blockHeight ?? "—"}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            )}
          </section>
        </>
      )}
    </>
  );
}

function Tile(props: { label: string; value: string; mono?: boolean; small?: boolean }) {
  return (
    <div class="tile">
      <span class="tile-label">{props.label}</span>
      <span class={`tile-value${props.mono ? " mono" : ""}${props.small ? " small" : ""}`}>{props.value}</span>
    </div>
  );
}

function Counts(props: { label: string; counts: Record<string, number>; name: (key: string) => string }) {
  const entries = Object.entries(props.counts).sort((a, b) => b[1] - a[1]);
  return (
    <table>
      <caption class="visually-hidden">Registrations by {props.label.toLowerCase()}</caption>
      <thead>
        <tr>
          <th scope="col">{props.label}</th>
          <th scope="col">Works</th>
        </tr>
      </thead>
      <tbody>
        {entries.length === 0 ? (
          <tr>
            <td colSpan={2}>None yet</td>
          </tr>
        ) : (
          entries.map(([key, count]) => (
            <tr key={key}>
              <td>{props.name(key)}</td>
              <td>{count.toLocaleString()}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
  );
}
