import { type Registration, toLedgerHash } from "@daon/sdk";
import { useEffect, useState } from "preact/hooks";
import { ContentInput, type ContentEntry } from "../components/content-input.js";
import { ProofDownload, RegistrationFacts } from "../components/registration-card.js";
import { Alert, describeError, formatTime, useAction, usePageTitle } from "../components/ui.js";
import { hashRawText, parseContentHash } from "../hashing.js";
import type { ProofCheck } from "../proof-check.js";
import { Link, navigate } from "../router.js";
import { client } from "../session.js";
import { aiPolicyLabel, licenceLabel } from "../terms.js";

/** Verify: look a work up by its text, file or hash, computed here; only hashes are sent. */
export function VerifyPage() {
  usePageTitle("Verify a work");
  const [entry, setEntry] = useState<ContentEntry | undefined>();
  const [notFound, setNotFound] = useState<string | undefined>();
  const lookup = useAction(async () => {
    if (!entry?.hash) return;
    setNotFound(undefined);
    // Text may have been registered canonicalised (the usual way) or hashed raw elsewhere: try both.
    const candidates = [entry.hash];
    if (entry.kind === "text") {
      try {
        const raw = hashRawText(entry.text);
        if (raw !== entry.hash) candidates.push(raw);
      } catch {}
    }
    for (const hash of candidates) {
      const found = await client.verify(hash);
      if (found.isValid) return navigate(`/verify/sha256:${found.contentHash}`);
    }
    setNotFound(entry.hash);
  });
  return (
    <>
      <h1 tabIndex={-1}>Verify a work</h1>
      <p class="lead">
        Find out whether a work is registered on DAON, when, and under which terms. The content is hashed in this browser and only the hash
        is looked up.
      </p>
      <form
        class="card"
        onSubmit={(event) => {
          event.preventDefault();
          void lookup.run();
        }}
      >
        <ContentInput id="verify" kinds={["text", "file", "hash"]} onChange={setEntry} textLabel="The text to look up" />
        <button type="submit" disabled={!entry?.hash || lookup.busy}>
          {lookup.busy ? "Looking it up…" : "Verify"}
        </button>
      </form>
      {lookup.error ? <Alert kind="error">{lookup.error}</Alert> : null}
      {notFound ? <NotRegistered hash={notFound} /> : null}
    </>
  );
}

function NotRegistered(props: { hash: string }) {
  return (
    <section class="card not-found" aria-labelledby="not-found-heading">
      <h2 id="not-found-heading">Not registered</h2>
      <p>
        No work with this content hash is registered on DAON. A registration would have to match the content exactly (for text, after markup
        is removed).
      </p>
      <p class="mono">{toLedgerHash(props.hash)}</p>
      <p>
        <Link href="/">Protect this work now</Link>
      </p>
    </section>
  );
}

type Lookup =
  | { state: "loading" }
  | { state: "invalid"; message: string }
  | { state: "unknown"; hash: string }
  | { state: "found"; registration: Registration }
  | { state: "error"; message: string };

/** The public page of one hash (`/verify/sha256:<hash>`, the verificationUrl): what is registered, and a proof check in the browser. */
export function VerificationPage(props: { hash: string }) {
  const [lookup, setLookup] = useState<Lookup>({ state: "loading" });
  usePageTitle(lookup.state === "found" ? "Verified registration" : lookup.state === "unknown" ? "Not registered" : "Verification");
  useEffect(() => {
    let hash: string;
    try {
      hash = parseContentHash(decodeURIComponent(props.hash));
    } catch (error) {
      setLookup({ state: "invalid", message: describeError(error) });
      return;
    }
    setLookup({ state: "loading" });
    client
      .verify(hash)
      .then((found) => setLookup(found.isValid ? { state: "found", registration: found } : { state: "unknown", hash }))
      .catch((error) => setLookup({ state: "error", message: describeError(error) }));
  }, [props.hash]);

  if (lookup.state === "loading")
    return (
      <>
        <h1 tabIndex={-1}>Verification</h1>
        <p aria-live="polite">Looking the hash up…</p>
      </>
    );
  if (lookup.state === "invalid" || lookup.state === "error")
    return (
      <>
        <h1 tabIndex={-1}>Verification</h1>
        <Alert kind="error">{lookup.state === "invalid" ? `This is not a content hash: ${lookup.message}` : lookup.message}</Alert>
        <p>
          <Link href="/verify">Look up a work</Link>
        </p>
      </>
    );
  if (lookup.state === "unknown")
    return (
      <>
        <h1 tabIndex={-1}>Not registered</h1>
        <NotRegistered hash={lookup.hash} />
      </>
    );
  const registration = lookup.registration;
  const confirmed = registration.status === "confirmed";
  return (
    <>
      <h1 tabIndex={-1}>{confirmed ? "Registered on the DAON ledger" : "Registered, waiting for the ledger"}</h1>
      <p class="lead">
        {confirmed
          ? `This work was registered on ${formatTime(registration.timestamp)} under ${licenceLabel(registration.license)}, with the AI policy "${aiPolicyLabel(registration.ai_training_policy)}".`
          : "DAON has accepted this registration; it will be in the next block."}
      </p>
      <section class="card" aria-labelledby="facts-heading">
        <h2 id="facts-heading">What DAON says</h2>
        <RegistrationFacts registration={registration} />
        {confirmed ? <ProofDownload contentHash={registration.contentHash} /> : null}
      </section>
      {confirmed ? <ProofCheckPanel registration={registration} /> : null}
    </>
  );
}

function ProofCheckPanel(props: { registration: Registration }) {
  const r = props.registration;
  const [result, setResult] = useState<ProofCheck | undefined>();
  const [givenKey, setGivenKey] = useState("");
  const check = useAction(async () => {
    setResult(undefined);
    const { checkProof } = await import("../proof-check.js");
    setResult(await checkProof(r.contentHash, givenKey.trim() || undefined));
  });
  const mismatches = result
    ? [
        result.record.license !== r.license.replaceAll("-", "_") ? "licence" : undefined,
        result.record.aiTrainingPolicy !== r.ai_training_policy ? "AI policy" : undefined,
        (result.record.owner || null) !== (r.owner ?? null) ? "owner" : undefined,
        result.blockHeight !== r.blockHeight ? "ledger height" : undefined,
      ].filter((x): x is string => x !== undefined)
    : [];
  return (
    <section class="card" aria-labelledby="proof-heading">
      <h2 id="proof-heading">Check it yourself</h2>
      <p>
        Your browser downloads the proof and checks it: the validator's signature on the block, the transaction's place in the block, and
        the record in the ledger's state. It trusts only the validator key named in the chain's genesis, not this server's answers.
      </p>
      <details>
        <summary>Use a validator key you got elsewhere</summary>
        <div class="field">
          <label for="given-key">Validator public key (base64 Ed25519)</label>
          <input
            id="given-key"
            class="mono"
            value={givenKey}
            onInput={(e) => setGivenKey((e.target as HTMLInputElement).value)}
            spellcheck={false}
          />
          <span class="hint">Leave empty to use the key from the chain's genesis.</span>
        </div>
      </details>
      <button type="button" onClick={() => check.run()} disabled={check.busy}>
        {check.busy ? "Checking the proof…" : "Check it yourself"}
      </button>
      <div aria-live="polite">
        {check.error ? <Alert kind="error">The proof does not hold: {check.error}</Alert> : null}
        {result ? (
          <div class="proof-result">
            <Alert kind={mismatches.length ? "error" : "success"}>
              {mismatches.length
                ? `The proof holds, but the ledger's ${mismatches.join(", ")} differ from what this page shows above.`
                : "The proof holds: checked in your browser."}
            </Alert>
            <ul class="checklist">
              <li>
                Block {result.blockHeight} is signed by the validator{" "}
                {result.validatorAddress ? <code>{result.validatorAddress}</code> : null} of chain <code>{result.chainId}</code>.
              </li>
              <li>
                Transaction <code>{result.txHash}</code> is in that block and registers this hash.
              </li>
              <li>
                The ledger's state after block {result.stateHeight} holds the record: owner {result.record.owner || "anonymous"}, licence{" "}
                {licenceLabel(result.record.license)}, AI policy {aiPolicyLabel(result.record.aiTrainingPolicy)}, registered{" "}
                {formatTime(result.record.timestamp)}.
              </li>
              <li>
                Trusted key ({result.keySource === "genesis" ? "from the chain's genesis" : "the one you gave"}):{" "}
                <code class="wrap">{result.validatorKey}</code>. Compare it with the key your DAON operator publishes.
              </li>
            </ul>
          </div>
        ) : null}
      </div>
    </section>
  );
}
