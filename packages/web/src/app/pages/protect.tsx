import type { AiTrainingPolicy, ProtectResult, Registration } from "@daon/sdk";
import { useEffect, useRef, useState } from "preact/hooks";
import { ContentInput, type ContentEntry } from "../components/content-input.js";
import { RegistrationCard } from "../components/registration-card.js";
import { Alert, describeError, usePageTitle } from "../components/ui.js";
import { client, useUser } from "../session.js";
import { AI_POLICY_CHOICES, LICENCE_CHOICES } from "../terms.js";

type Phase =
  | { step: "idle" }
  | { step: "sending" }
  | { step: "waiting"; since: number }
  | { step: "done"; registration: Registration; existing: boolean };

const POLL_MS = 1000;
const WAIT_LIMIT_MS = 60_000;

/** Protect: hash the work here, choose its terms, register it, and wait for the ledger. */
export function ProtectPage() {
  usePageTitle("Protect your work");
  const user = useUser();
  const [entry, setEntry] = useState<ContentEntry | undefined>();
  const [title, setTitle] = useState("");
  const [licence, setLicence] = useState<string>("liberation_v1");
  const [policy, setPolicy] = useState<AiTrainingPolicy>("prohibited");
  const [contactEmail, setContactEmail] = useState("");
  const [contactUri, setContactUri] = useState("");
  const [hashOnly, setHashOnly] = useState(true);
  const [phase, setPhase] = useState<Phase>({ step: "idle" });
  const [error, setError] = useState<string | undefined>();
  const [elapsed, setElapsed] = useState(0);
  const cancelled = useRef(false);
  useEffect(
    () => () => {
      cancelled.current = true;
    },
    [],
  );
  useEffect(() => {
    if (phase.step !== "done") return;
    document.getElementById("result-heading")?.focus();
  }, [phase.step]);

  const ready = entry?.hash !== undefined && phase.step !== "sending" && phase.step !== "waiting";

  async function submit(event: Event) {
    event.preventDefault();
    if (!entry?.hash) return;
    setError(undefined);
    setPhase({ step: "sending" });
    const metadata = { ...(title.trim() ? { title: title.trim() } : {}), type: entry.kind };
    const terms = {
      license: licence,
      ai_training_policy: policy,
      licensing_email: policy === "contact_required" && contactEmail.trim() ? contactEmail.trim() : null,
      licensing_uri: policy === "contact_required" && contactUri.trim() ? contactUri.trim() : null,
    };
    try {
      let result: ProtectResult;
      if (hashOnly) {
        result = await client.protectHash({ contentHash: entry.hash, metadata, ...terms }, { wait: false });
      } else if (entry.kind === "file" && entry.file) {
        result = await client.protectFile(
          entry.file,
          {
            title: metadata.title,
            license: terms.license,
            ai_training_policy: policy,
            ...(terms.licensing_email ? { licensing_email: terms.licensing_email } : {}),
            ...(terms.licensing_uri ? { licensing_uri: terms.licensing_uri } : {}),
          },
          { upload: true, wait: false },
        );
      } else {
        result = await client.protect({ content: entry.text, metadata, ...terms }, { wait: false });
      }
      if (result.status === "confirmed") return setPhase({ step: "done", registration: result, existing: result.existing });
      await waitForLedger(result);
    } catch (caught) {
      setPhase({ step: "idle" });
      setError(describeError(caught));
    }
  }

  async function waitForLedger(registration: ProtectResult) {
    const since = Date.now();
    setPhase({ step: "waiting", since });
    let latest: Registration = registration;
    while (!cancelled.current && Date.now() - since < WAIT_LIMIT_MS) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      setElapsed(Math.round((Date.now() - since) / 1000));
      const found = await client.verify(registration.contentHash).catch(() => undefined);
      if (found?.isValid) latest = found;
      if (latest.status === "confirmed") break;
    }
    setPhase({ step: "done", registration: latest, existing: registration.existing });
  }

  return (
    <>
      <h1 tabIndex={-1}>Protect your work</h1>
      <p class="lead">
        Register a text or a file on the DAON ledger, so you can later prove it was yours first. Your work is hashed in this browser; by
        default only its hash leaves this computer.
      </p>
      {user ? <p>Signed in as {user.email}: the work will be registered to your account.</p> : null}
      <form class="card" onSubmit={submit} aria-describedby="protect-privacy">
        <ContentInput id="protect" kinds={["text", "file"]} onChange={setEntry} />
        <div class="field">
          <label for="protect-title">Title (optional)</label>
          <input id="protect-title" value={title} maxLength={500} onInput={(e) => setTitle((e.target as HTMLInputElement).value)} />
          <span class="hint">Shown on the public verification page. Never written to the ledger.</span>
        </div>
        <Choices
          legend="Licence: what others may do with your work"
          name="licence"
          choices={LICENCE_CHOICES}
          chosen={licence}
          onChoose={setLicence}
        />
        <Choices<AiTrainingPolicy>
          legend="AI training: may the work train AI models?"
          name="ai-policy"
          choices={AI_POLICY_CHOICES}
          chosen={policy}
          onChoose={setPolicy}
        />
        {policy === "contact_required" ? (
          <div class="field-row">
            <div class="field">
              <label for="protect-contact-email">Licensing e-mail</label>
              <input
                id="protect-contact-email"
                type="email"
                value={contactEmail}
                onInput={(e) => setContactEmail((e.target as HTMLInputElement).value)}
              />
            </div>
            <div class="field">
              <label for="protect-contact-uri">or licensing web page</label>
              <input
                id="protect-contact-uri"
                type="url"
                value={contactUri}
                onInput={(e) => setContactUri((e.target as HTMLInputElement).value)}
              />
            </div>
            <span class="hint">Needed for "Ask me first". Public: shown on the verification page.</span>
          </div>
        ) : null}
        <div class="field checkbox">
          <input
            id="protect-hash-only"
            type="checkbox"
            checked={hashOnly}
            onChange={(e) => setHashOnly((e.target as HTMLInputElement).checked)}
          />
          <label for="protect-hash-only">Send only the hash (recommended)</label>
        </div>
        <p id="protect-privacy" class="hint">
          {hashOnly
            ? "Your content stays on this computer; DAON receives its hash, the title and the terms you chose."
            : "Your content will be sent to DAON, which hashes it the same way. DAON keeps only the hash."}
        </p>
        <button type="submit" disabled={!ready}>
          {phase.step === "sending" ? "Registering…" : phase.step === "waiting" ? "Waiting for the ledger…" : "Protect this work"}
        </button>
      </form>
      <div aria-live="polite" class="progress-area">
        {phase.step === "sending" ? <Progress steps={["Sending the hash", "Waiting for the ledger"]} current={0} /> : null}
        {phase.step === "waiting" ? (
          <>
            <Progress steps={["Registered with DAON", "Waiting for the ledger"]} current={1} />
            <p>Waiting for the next block… {elapsed > 0 ? `${elapsed} s` : ""}</p>
          </>
        ) : null}
      </div>
      {error ? <Alert kind="error">{error}</Alert> : null}
      {phase.step === "done" ? <RegistrationCard registration={phase.registration} existing={phase.existing} /> : null}
    </>
  );
}

function Progress(props: { steps: string[]; current: number }) {
  return (
    <ol class="progress" aria-label="Progress">
      {props.steps.map((step, index) => (
        <li
          key={step}
          class={index < props.current ? "done" : index === props.current ? "current" : ""}
          aria-current={index === props.current ? "step" : undefined}
        >
          {step}
          {index < props.current ? <span class="visually-hidden"> (done)</span> : null}
        </li>
      ))}
    </ol>
  );
}

/** One radio group of explained choices (licence, AI training policy). */
function Choices<Value extends string>(props: {
  legend: string;
  name: string;
  choices: readonly { value: Value; label: string; explanation: string }[];
  chosen: Value;
  onChoose(value: Value): void;
}) {
  return (
    <fieldset class="choices">
      <legend>{props.legend}</legend>
      {props.choices.map((choice) => (
        <label key={choice.value} class="choice">
          <input
            type="radio"
            name={props.name}
            value={choice.value}
            checked={props.chosen === choice.value}
            onChange={() => props.onChoose(choice.value)}
          />
          <span>
            <strong>{choice.label}</strong>
            <span class="explain">{choice.explanation}</span>
          </span>
        </label>
      ))}
    </fieldset>
  );
}
