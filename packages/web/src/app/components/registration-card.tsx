import type { Registration } from "@daon/sdk";
import { Link } from "../router.js";
import { client } from "../session.js";
import { aiPolicyExplanation, aiPolicyLabel, licenceExplanation, licenceLabel } from "../terms.js";
import { CopyField, downloadJson, formatTime, useAction } from "./ui.js";

/** The portal path of a verification URL: the page is served by whichever host the portal runs on. */
export function verificationPath(registration: Pick<Registration, "verificationUrl" | "contentHash">): string {
  try {
    return new URL(registration.verificationUrl).pathname;
  } catch {
    return `/verify/sha256:${registration.contentHash}`;
  }
}

/** What the ledger says about a registration, as a definition list. */
export function RegistrationFacts(props: { registration: Registration }) {
  const r = props.registration;
  const confirmed = r.status === "confirmed";
  return (
    <dl class="facts">
      <dt>Status</dt>
      <dd>
        <span class={`badge ${confirmed ? "badge-ok" : "badge-wait"}`}>
          {confirmed ? "Confirmed on the ledger" : "Waiting for the ledger"}
        </span>
      </dd>
      {r.metadata?.title ? (
        <>
          <dt>Title</dt>
          <dd>{String(r.metadata.title)}</dd>
        </>
      ) : null}
      <dt>Registered</dt>
      <dd>{formatTime(r.timestamp)}</dd>
      <dt>Licence</dt>
      <dd>
        {licenceLabel(r.license)}
        <span class="explain">{licenceExplanation(r.license)}</span>
      </dd>
      <dt>AI training</dt>
      <dd>
        {aiPolicyLabel(r.ai_training_policy)}
        <span class="explain">{aiPolicyExplanation(r.ai_training_policy)}</span>
        {r.licensing_email ? <span class="explain">Contact: {r.licensing_email}</span> : null}
        {r.licensing_uri ? <span class="explain">Licensing page: {r.licensing_uri}</span> : null}
      </dd>
      <dt>Content hash</dt>
      <dd class="mono">{r.ledgerContentHash}</dd>
      <dt>Ledger height</dt>
      <dd>{r.blockHeight ?? "— (not in a block yet)"}</dd>
      <dt>Transaction</dt>
      <dd class="mono">{r.txHash ?? "—"}</dd>
      <dt>Block time</dt>
      <dd>{formatTime(r.blockTime)}</dd>
      <dt>Chain</dt>
      <dd class="mono">{r.chainId}</dd>
      <dt>Owner</dt>
      <dd class="mono">{r.owner ?? "anonymous"}</dd>
    </dl>
  );
}

/** Saves the proof bundle of a confirmed registration as a file anyone can check offline. */
export function ProofDownload(props: { contentHash: string }) {
  const download = useAction(async () => {
    const bundle = await client.proof(props.contentHash);
    downloadJson(`daon-proof-${props.contentHash.slice(0, 16)}.json`, bundle);
  });
  return (
    <div>
      <button type="button" class="secondary" onClick={() => download.run()} disabled={download.busy}>
        {download.busy ? "Preparing the proof…" : "Download the proof file"}
      </button>
      {download.error ? (
        <p class="field-error" role="alert">
          {download.error}
        </p>
      ) : null}
    </div>
  );
}

/** The result of protecting a work: facts, the verification link, embed badges and the proof file. */
export function RegistrationCard(props: { registration: Registration; existing: boolean }) {
  const r = props.registration;
  const path = verificationPath(r);
  const origin = (() => {
    try {
      return new URL(r.verificationUrl).origin;
    } catch {
      return location.origin;
    }
  })();
  const alt = "Protected by DAON: verify this work";
  const html = `<a href="${r.verificationUrl}"><img src="${origin}/badge.svg" alt="${alt}" width="148" height="20"></a>`;
  const markdown = `[![${alt}](${origin}/badge.svg)](${r.verificationUrl})`;
  return (
    <section class="card result" aria-labelledby="result-heading">
      <h2 id="result-heading" tabIndex={-1}>
        {props.existing
          ? "This work was already registered"
          : r.status === "confirmed"
            ? "Your work is protected"
            : "Your work is registered"}
      </h2>
      {props.existing ? <p>DAON keeps the first registration of a work; here it is.</p> : null}
      <RegistrationFacts registration={r} />
      <p>
        <Link href={path}>Open the verification page</Link>
      </p>
      <CopyField id="verification-url" label="Verification link" value={r.verificationUrl} />
      <CopyField id="badge-html" label="Embed badge (HTML)" value={html} multiline />
      <CopyField id="badge-markdown" label="Embed badge (Markdown)" value={markdown} multiline />
      {r.status === "confirmed" ? (
        <ProofDownload contentHash={r.contentHash} />
      ) : (
        <p>The proof file is ready once the work is on the ledger.</p>
      )}
    </section>
  );
}
