import type { Registration, Transfer, User } from "@daon/sdk";
import { useEffect, useState } from "preact/hooks";
import { verificationPath } from "../components/registration-card.js";
import { Alert, CopyField, formatTime, shortHash, TableWrap, useAction, usePageTitle } from "../components/ui.js";
import { Link, navigate } from "../router.js";
import { client, useUser } from "../session.js";
import { licenceLabel } from "../terms.js";

const PAGE_SIZE = 20;

/** The signed-in creator: owner id, works (paged, searchable), transfers, and sessions. */
export function AccountPage() {
  usePageTitle("My works");
  const user = useUser();
  if (!user)
    return (
      <>
        <h1 tabIndex={-1}>My works</h1>
        <p>
          <Link href="/sign-in">Sign in</Link> to see the works registered to your account.
        </p>
      </>
    );
  return (
    <>
      <h1 tabIndex={-1}>My works</h1>
      <Profile user={user} />
      <Works />
      <Security />
    </>
  );
}

function Profile(props: { user: User }) {
  return (
    <section class="card" aria-labelledby="profile-heading">
      <h2 id="profile-heading">Your account</h2>
      <p>
        Signed in as <strong>{props.user.email}</strong>
        {props.user.role === "admin" ? " (administrator)" : ""}.
      </p>
      <CopyField id="owner-id" label="Your owner id (give it to someone who wants to transfer a work to you)" value={props.user.owner_id} />
    </section>
  );
}

function Works() {
  const [works, setWorks] = useState<Registration[]>([]);
  const [cursor, setCursor] = useState<string | null | undefined>(undefined);
  const [search, setSearch] = useState("");
  const [transferring, setTransferring] = useState<string | undefined>();
  const load = useAction(async (from?: string) => {
    const page = await client.me.works({ limit: PAGE_SIZE, cursor: from });
    setWorks((current) => (from ? [...current, ...page.items] : page.items));
    setCursor(page.nextCursor);
  });
  useEffect(() => {
    void load.run();
  }, []);
  const query = search
    .trim()
    .toLowerCase()
    .replace(/^sha256:/, "");
  const shown = query
    ? works.filter(
        (work) =>
          work.contentHash.includes(query) ||
          String(work.metadata?.title ?? "")
            .toLowerCase()
            .includes(query),
      )
    : works;
  return (
    <section class="card" aria-labelledby="works-heading">
      <h2 id="works-heading">Registered works</h2>
      <div class="field">
        <label for="works-search">Search by title or hash</label>
        <input id="works-search" type="search" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
      </div>
      {load.error ? <Alert kind="error">{load.error}</Alert> : null}
      <p aria-live="polite" class="hint">
        {load.busy ? "Loading…" : `${shown.length} of ${works.length} loaded work${works.length === 1 ? "" : "s"} shown.`}
      </p>
      {shown.length > 0 ? (
        <TableWrap label="Registered works">
          <table class="works">
            <thead>
              <tr>
                <th scope="col">Title</th>
                <th scope="col">Hash</th>
                <th scope="col">Status</th>
                <th scope="col">Licence</th>
                <th scope="col">Registered</th>
                <th scope="col">
                  <span class="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {shown.map((work) => (
                <WorkRow
                  key={work.contentHash}
                  work={work}
                  open={transferring === work.contentHash}
                  onToggle={() => setTransferring(transferring === work.contentHash ? undefined : work.contentHash)}
                  onTransferred={() => {
                    setTransferring(undefined);
                    void load.run();
                  }}
                />
              ))}
            </tbody>
          </table>
        </TableWrap>
      ) : !load.busy ? (
        <p>
          {works.length === 0 ? (
            <>
              No works yet. <Link href="/">Protect your first work</Link>.
            </>
          ) : (
            "No loaded work matches."
          )}
        </p>
      ) : null}
      {cursor ? (
        <button type="button" class="secondary" disabled={load.busy} onClick={() => load.run(cursor)}>
          Load more works
        </button>
      ) : null}
    </section>
  );
}

function WorkRow(props: { work: Registration; open: boolean; onToggle: () => void; onTransferred: () => void }) {
  const work = props.work;
  const title = String(work.metadata?.title ?? "Untitled");
  return (
    <>
      <tr>
        <td>{title}</td>
        <td>
          <Link href={verificationPath(work)} class="mono">
            {shortHash(work.contentHash)}
          </Link>
        </td>
        <td>{work.status === "confirmed" ? "On the ledger" : "Waiting"}</td>
        <td>{licenceLabel(work.license)}</td>
        <td>{formatTime(work.timestamp)}</td>
        <td>
          <button type="button" class="secondary small" aria-expanded={props.open} onClick={props.onToggle}>
            Transfer<span class="visually-hidden"> “{title}”</span>
          </button>
        </td>
      </tr>
      {props.open ? (
        <tr class="transfer-row">
          <td colSpan={6}>
            <TransferForm work={work} onTransferred={props.onTransferred} />
          </td>
        </tr>
      ) : null}
    </>
  );
}

function TransferForm(props: { work: Registration; onTransferred: () => void }) {
  const [to, setTo] = useState("");
  const [code, setCode] = useState("");
  const [done, setDone] = useState<Transfer | undefined>();
  const id = props.work.contentHash.slice(0, 12);
  const transfer = useAction(async () => {
    setDone(await client.me.transfer(props.work.contentHash, { ownerId: to.trim(), code: code.trim() }));
  });
  if (done)
    return (
      <div>
        <Alert kind="success">
          Transferred to {done.newOwner}
          {done.status === "confirmed" ? ` in block ${done.blockHeight}.` : "; the ledger will confirm it in the next block."}
        </Alert>
        <button type="button" class="secondary" onClick={props.onTransferred}>
          Done
        </button>
      </div>
    );
  return (
    <form
      class="inline-form"
      aria-label={`Transfer ${String(props.work.metadata?.title ?? props.work.contentHash)}`}
      onSubmit={(event) => {
        event.preventDefault();
        void transfer.run();
      }}
    >
      <p class="hint">
        The new owner gives you their owner id (shown on their “My works” page). Transfers are recorded on the ledger and cannot be undone
        by you.
      </p>
      <div class="field-row">
        <div class="field">
          <label for={`to-${id}`}>Recipient's owner id</label>
          <input
            id={`to-${id}`}
            class="mono"
            required
            pattern="o_[a-z2-7]{26}"
            value={to}
            onInput={(e) => setTo((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for={`code-${id}`}>Code from your authenticator</label>
          <input
            id={`code-${id}`}
            class="code-input"
            inputMode="numeric"
            autocomplete="one-time-code"
            required
            maxLength={6}
            value={code}
            onInput={(e) => setCode((e.target as HTMLInputElement).value)}
          />
        </div>
      </div>
      <button type="submit" disabled={transfer.busy}>
        {transfer.busy ? "Transferring…" : "Transfer this work"}
      </button>
      {transfer.error ? <Alert kind="error">{transfer.error}</Alert> : null}
    </form>
  );
}

function Security() {
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | undefined>();
  const factor = () => (/^\d{6}$/.test(code.trim()) ? { code: code.trim() } : { backup_code: code.trim() });
  const signOut = useAction(async () => {
    await client.auth.logout();
    navigate("/");
  });
  const everywhere = useAction(async () => {
    await client.auth.logoutEverywhere(factor());
    navigate("/sign-in");
  });
  const regenerate = useAction(async () => setCodes(await client.auth.regenerateBackupCodes(factor())));
  return (
    <section class="card" aria-labelledby="security-heading">
      <h2 id="security-heading">Sessions and backup codes</h2>
      <button type="button" class="secondary" onClick={() => signOut.run()} disabled={signOut.busy}>
        Sign out of this browser
      </button>
      <form
        class="inline-form"
        aria-labelledby="security-heading"
        onSubmit={(event) => {
          event.preventDefault();
        }}
      >
        <div class="field">
          <label for="security-code">Code from your authenticator, or a backup code</label>
          <input
            id="security-code"
            class="code-input"
            autocomplete="one-time-code"
            value={code}
            onInput={(e) => setCode((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="button-row">
          <button type="button" class="danger" disabled={!code.trim() || everywhere.busy} onClick={() => everywhere.run()}>
            Sign out everywhere
          </button>
          <button type="button" class="secondary" disabled={!code.trim() || regenerate.busy} onClick={() => regenerate.run()}>
            New backup codes
          </button>
        </div>
      </form>
      {signOut.error || everywhere.error || regenerate.error ? (
        <Alert kind="error">{signOut.error ?? everywhere.error ?? regenerate.error}</Alert>
      ) : null}
      {codes ? (
        <div>
          <Alert kind="success">Your new backup codes (the old ones no longer work). They are not shown again.</Alert>
          <CopyField id="new-backup-codes" label="New backup codes" value={codes.join("\n")} multiline />
        </div>
      ) : null}
    </section>
  );
}
