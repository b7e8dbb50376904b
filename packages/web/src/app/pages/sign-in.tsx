import type { SignInSession, TotpEnrolment } from "@daon/sdk";
import { useEffect, useRef, useState } from "preact/hooks";
import { Alert, CopyField, describeError, useAction, usePageTitle } from "../components/ui.js";
import { Link, navigate } from "../router.js";
import { client, useUser } from "../session.js";

/** Sign-in, step 1: an e-mail address gets a single-use link. */
export function SignInPage() {
  usePageTitle("Sign in");
  const user = useUser();
  const [email, setEmail] = useState("");
  const [sentTo, setSentTo] = useState<string | undefined>();
  const send = useAction(async () => {
    await client.auth.requestMagicLink(email.trim());
    setSentTo(email.trim());
  });
  return (
    <>
      <h1 tabIndex={-1}>Sign in</h1>
      {user ? (
        <p>
          You are signed in as {user.email}. <Link href="/account">Go to my works</Link>.
        </p>
      ) : null}
      <p class="lead">No password: DAON e-mails you a sign-in link, then asks for a code from your authenticator app.</p>
      <form
        class="card narrow"
        onSubmit={(event) => {
          event.preventDefault();
          void send.run();
        }}
      >
        <div class="field">
          <label for="sign-in-email">E-mail address</label>
          <input
            id="sign-in-email"
            type="email"
            autocomplete="email"
            required
            value={email}
            onInput={(e) => setEmail((e.target as HTMLInputElement).value)}
          />
        </div>
        <button type="submit" disabled={send.busy || email.trim() === ""}>
          {send.busy ? "Sending…" : "E-mail me a sign-in link"}
        </button>
      </form>
      {send.error ? <Alert kind="error">{send.error}</Alert> : null}
      {sentTo ? (
        <Alert kind="success">
          If {sentTo} can sign in, a link is on its way. Open it in this browser within 15 minutes. It works once.
        </Alert>
      ) : null}
    </>
  );
}

type Stage =
  | { step: "checking" }
  | { step: "failed"; message: string }
  | { step: "enrol"; session: SignInSession; enrolment: TotpEnrolment }
  | { step: "code"; session: SignInSession }
  | { step: "backup-codes"; codes: string[] };

/** Sign-in, step 2: the link (`/auth/verify#token=…`), then TOTP enrolment or a code. */
export function AuthVerifyPage() {
  usePageTitle("Finish signing in");
  const [stage, setStage] = useState<Stage>({ step: "checking" });
  const started = useRef(false);
  useEffect(() => {
    if (started.current) return;
    started.current = true;
    const token = new URLSearchParams(location.hash.slice(1)).get("token");
    // The token is a credential: off the address bar and out of history at once.
    history.replaceState(null, "", "/auth/verify");
    if (!token) return setStage({ step: "failed", message: "This link has no sign-in token. Ask for a new link." });
    void (async () => {
      try {
        const session = await client.auth.verifyMagicLink(token);
        if (session.stage === "setup") setStage({ step: "enrol", session, enrolment: await client.auth.setupTotp(session.session_id) });
        else setStage({ step: "code", session });
      } catch (error) {
        setStage({ step: "failed", message: describeError(error) });
      }
    })();
  }, []);

  if (stage.step === "checking")
    return (
      <>
        <h1 tabIndex={-1}>Finish signing in</h1>
        <p aria-live="polite">Checking your link…</p>
      </>
    );
  if (stage.step === "failed")
    return (
      <>
        <h1 tabIndex={-1}>Finish signing in</h1>
        <Alert kind="error">{stage.message}</Alert>
        <p>
          <Link href="/sign-in">Ask for a new link</Link>
        </p>
      </>
    );
  if (stage.step === "enrol")
    return <Enrol session={stage.session} enrolment={stage.enrolment} onDone={(codes) => setStage({ step: "backup-codes", codes })} />;
  if (stage.step === "code") return <EnterCode session={stage.session} />;
  return <BackupCodes codes={stage.codes} />;
}

function CodeInput(props: { id: string; label: string; value: string; onInput: (value: string) => void; backup?: boolean }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        class="code-input"
        inputMode={props.backup ? "text" : "numeric"}
        autocomplete="one-time-code"
        pattern={props.backup ? undefined : "[0-9]{6}"}
        maxLength={props.backup ? 12 : 6}
        required
        value={props.value}
        onInput={(e) => props.onInput((e.target as HTMLInputElement).value)}
      />
    </div>
  );
}

function Enrol(props: { session: SignInSession; enrolment: TotpEnrolment; onDone: (backupCodes: string[]) => void }) {
  const [code, setCode] = useState("");
  const confirm = useAction(async () => {
    const tokens = await client.auth.confirmTotp(props.session.session_id, code.trim());
    props.onDone(tokens.backup_codes);
  });
  return (
    <>
      <h1 tabIndex={-1}>Set up your authenticator</h1>
      <p class="lead">Welcome, {props.session.user.email}. DAON asks for a code from an authenticator app each time you sign in.</p>
      <form
        class="card narrow"
        onSubmit={(event) => {
          event.preventDefault();
          void confirm.run();
        }}
      >
        <ol class="steps">
          <li>
            Scan this QR code with an authenticator app (such as Aegis, Google Authenticator or 1Password).
            <img
              class="qr"
              src={props.enrolment.qr_code}
              alt="QR code for your authenticator app; the key below holds the same secret"
              width={200}
              height={200}
            />
          </li>
          <li>
            Or type this key into the app by hand:
            <CopyField id="manual-key" label="Setup key" value={props.enrolment.manual_entry_key} />
          </li>
          <li>
            <CodeInput id="enrol-code" label="The 6-digit code the app shows" value={code} onInput={setCode} />
          </li>
        </ol>
        <button type="submit" disabled={confirm.busy || code.trim().length !== 6}>
          {confirm.busy ? "Checking…" : "Confirm and sign in"}
        </button>
      </form>
      {confirm.error ? <Alert kind="error">{confirm.error}</Alert> : null}
    </>
  );
}

function EnterCode(props: { session: SignInSession }) {
  const [useBackup, setUseBackup] = useState(false);
  const [code, setCode] = useState("");
  const complete = useAction(async () => {
    await client.auth.completeSignIn(props.session.session_id, useBackup ? { backup_code: code.trim() } : { code: code.trim() });
    navigate("/account");
  });
  return (
    <>
      <h1 tabIndex={-1}>Enter your code</h1>
      <p class="lead">Signing in as {props.session.user.email}.</p>
      <form
        class="card narrow"
        onSubmit={(event) => {
          event.preventDefault();
          void complete.run();
        }}
      >
        <CodeInput
          // A fresh input per kind: Preact would leave an empty pattern attribute behind, which refuses every code.
          key={useBackup ? "backup" : "totp"}
          id="sign-in-code"
          label={useBackup ? "A backup code (XXXX-XXXX)" : "The 6-digit code from your authenticator app"}
          value={code}
          onInput={setCode}
          backup={useBackup}
        />
        <button type="submit" disabled={complete.busy || code.trim() === ""}>
          {complete.busy ? "Checking…" : "Sign in"}
        </button>
        <button
          type="button"
          class="link-button"
          onClick={() => {
            setUseBackup(!useBackup);
            setCode("");
          }}
        >
          {useBackup ? "Use the authenticator app instead" : "Use a backup code instead"}
        </button>
      </form>
      {complete.error ? <Alert kind="error">{complete.error}</Alert> : null}
    </>
  );
}

function BackupCodes(props: { codes: string[] }) {
  return (
    <>
      <h1 tabIndex={-1}>Save your backup codes</h1>
      <p class="lead">
        You are signed in. If you lose your authenticator, each of these codes signs you in once. Keep them somewhere safe: they are not
        shown again.
      </p>
      <section class="card narrow" aria-labelledby="codes-heading">
        <h2 id="codes-heading">Backup codes</h2>
        <ul class="backup-codes" data-testid="backup-codes">
          {props.codes.map((code) => (
            <li key={code} class="mono">
              {code}
            </li>
          ))}
        </ul>
        <CopyField id="backup-codes-all" label="All codes" value={props.codes.join("\n")} multiline />
        <button type="button" onClick={() => navigate("/account")}>
          I saved them: go to my works
        </button>
      </section>
    </>
  );
}
