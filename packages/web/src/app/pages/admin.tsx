import type { AuditEntry, CertificationTier, Platform } from "@daon/sdk";
import { useEffect, useState } from "preact/hooks";
import { Alert, CopyField, formatTime, TableWrap, useAction, usePageTitle } from "../components/ui.js";
import { Link } from "../router.js";
import { client, useUser } from "../session.js";

type StatusFilter = "" | Platform["certification_status"];

/** Administrators: platforms to register, approve or suspend, and the audit log. */
export function AdminPage() {
  usePageTitle("Administration");
  const user = useUser();
  if (user?.role !== "admin")
    return (
      <>
        <h1 tabIndex={-1}>Administration</h1>
        <p>This page is for DAON administrators. {user ? "Your account is not one." : <Link href="/sign-in">Sign in</Link>}</p>
      </>
    );
  return (
    <>
      <h1 tabIndex={-1}>Administration</h1>
      <Platforms />
      <AuditLog />
    </>
  );
}

function Platforms() {
  const [status, setStatus] = useState<StatusFilter>("");
  const [platforms, setPlatforms] = useState<Platform[]>([]);
  const [created, setCreated] = useState<{ domain: string; key: string } | undefined>();
  const [form, setForm] = useState({ domain: "", name: "", contact_email: "", certification_tier: "community" as CertificationTier });
  const [suspending, setSuspending] = useState<string | undefined>();
  const [reason, setReason] = useState("");
  const load = useAction(async () => setPlatforms((await client.admin.platforms({ limit: 100, ...(status ? { status } : {}) })).items));
  useEffect(() => {
    void load.run();
  }, [status]);
  const create = useAction(async () => {
    const answer = await client.admin.createPlatform(form);
    setCreated({ domain: answer.broker.domain, key: answer.api_key });
    setForm({ domain: "", name: "", contact_email: "", certification_tier: "community" });
    await load.run();
  });
  const act = useAction(async (id: string, action: "approve" | "suspend" | "unsuspend") => {
    if (action === "approve") await client.admin.approve(id);
    else if (action === "unsuspend") await client.admin.unsuspend(id);
    else await client.admin.suspend(id, reason.trim());
    setSuspending(undefined);
    setReason("");
    await load.run();
  });
  const field = (name: keyof typeof form) => (e: Event) => setForm({ ...form, [name]: (e.target as HTMLInputElement).value });
  return (
    <section class="card" aria-labelledby="platforms-heading">
      <h2 id="platforms-heading">Platforms</h2>
      <div class="field">
        <label for="platform-status">Show</label>
        <select id="platform-status" value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value as StatusFilter)}>
          <option value="">All platforms</option>
          <option value="pending">Waiting for approval</option>
          <option value="active">Active</option>
          <option value="suspended">Suspended</option>
        </select>
      </div>
      {load.error || act.error ? <Alert kind="error">{load.error ?? act.error}</Alert> : null}
      <TableWrap label="Platforms">
        <table>
          <thead>
            <tr>
              <th scope="col">Platform</th>
              <th scope="col">Contact</th>
              <th scope="col">Tier</th>
              <th scope="col">Status</th>
              <th scope="col">Registered</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {platforms.map((platform) => (
              <tr key={platform.id}>
                <td>
                  {platform.name}
                  <br />
                  <span class="mono">{platform.domain}</span>
                </td>
                <td>{platform.contact_email}</td>
                <td>{platform.certification_tier}</td>
                <td>
                  {platform.certification_status}
                  {platform.suspend_reason ? `: ${platform.suspend_reason}` : ""}
                </td>
                <td>{formatTime(platform.created_at)}</td>
                <td>
                  {platform.certification_status === "pending" ? (
                    <button type="button" class="small" onClick={() => act.run(platform.id, "approve")} disabled={act.busy}>
                      Approve<span class="visually-hidden"> {platform.domain}</span>
                    </button>
                  ) : null}
                  {platform.certification_status === "suspended" ? (
                    <button type="button" class="secondary small" onClick={() => act.run(platform.id, "unsuspend")} disabled={act.busy}>
                      Reactivate<span class="visually-hidden"> {platform.domain}</span>
                    </button>
                  ) : null}
                  {platform.certification_status === "active" ? (
                    suspending === platform.id ? (
                      <form
                        class="inline-form"
                        onSubmit={(event) => {
                          event.preventDefault();
                          void act.run(platform.id, "suspend");
                        }}
                      >
                        <label for={`reason-${platform.id}`}>Reason for suspending {platform.domain}</label>
                        <input
                          id={`reason-${platform.id}`}
                          required
                          maxLength={500}
                          value={reason}
                          onInput={(e) => setReason((e.target as HTMLInputElement).value)}
                        />
                        <span class="button-row">
                          <button type="submit" class="danger small" disabled={act.busy || !reason.trim()}>
                            Suspend now
                          </button>
                          <button type="button" class="secondary small" onClick={() => setSuspending(undefined)}>
                            Cancel
                          </button>
                        </span>
                      </form>
                    ) : (
                      <button type="button" class="danger small" onClick={() => setSuspending(platform.id)}>
                        Suspend<span class="visually-hidden"> {platform.domain}</span>
                      </button>
                    )
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {platforms.length === 0 && !load.busy ? <p>No platforms here.</p> : null}
      <form
        class="inline-form"
        aria-labelledby="new-platform-heading"
        onSubmit={(event) => {
          event.preventDefault();
          void create.run();
        }}
      >
        <h3 id="new-platform-heading">Register a platform</h3>
        <div class="field-row">
          <div class="field">
            <label for="platform-domain">Domain</label>
            <input id="platform-domain" required value={form.domain} onInput={field("domain")} placeholder="example.com" />
          </div>
          <div class="field">
            <label for="platform-name">Name</label>
            <input id="platform-name" required value={form.name} onInput={field("name")} />
          </div>
          <div class="field">
            <label for="platform-contact">Contact e-mail</label>
            <input id="platform-contact" type="email" required value={form.contact_email} onInput={field("contact_email")} />
          </div>
          <div class="field">
            <label for="platform-tier">Tier</label>
            <select id="platform-tier" value={form.certification_tier} onChange={field("certification_tier")}>
              <option value="community">Community (100 an hour)</option>
              <option value="standard">Standard (1,000 an hour)</option>
              <option value="enterprise">Enterprise (10,000 an hour)</option>
            </select>
          </div>
        </div>
        <button type="submit" disabled={create.busy}>
          Register platform
        </button>
        {create.error ? <Alert kind="error">{create.error}</Alert> : null}
        {created ? (
          <div class="shown-once">
            <Alert kind="success">
              {created.domain} is registered and waits for approval. Give its first key to the platform now: it is not shown again.
            </Alert>
            <CopyField id="platform-first-key" label={`First key of ${created.domain}`} value={created.key} />
          </div>
        ) : null}
      </form>
    </section>
  );
}

function AuditLog() {
  const [entries, setEntries] = useState<AuditEntry[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const load = useAction(async (from?: string) => {
    const page = await client.admin.auditLog({ limit: 25, cursor: from });
    setEntries((current) => (from ? [...current, ...page.items] : page.items));
    setCursor(page.nextCursor);
  });
  useEffect(() => {
    void load.run();
  }, []);
  return (
    <section class="card" aria-labelledby="audit-heading">
      <h2 id="audit-heading">Audit log</h2>
      <button type="button" class="secondary small" onClick={() => load.run()} disabled={load.busy}>
        Refresh
      </button>
      {load.error ? <Alert kind="error">{load.error}</Alert> : null}
      <TableWrap label="Audit log">
        <table>
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Action</th>
              <th scope="col">Target</th>
              <th scope="col">By</th>
              <th scope="col">Details</th>
            </tr>
          </thead>
          <tbody>
            {entries.map((entry) => (
              <tr key={entry.id}>
                <td>{formatTime(entry.at)}</td>
                <td>{entry.action}</td>
                <td class="mono">
                  {entry.target_type} {entry.target_id}
                </td>
                <td class="mono">{entry.actor_id ?? "—"}</td>
                <td class="mono wrap">{entry.details ? JSON.stringify(entry.details) : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {cursor ? (
        <button type="button" class="secondary" onClick={() => load.run(cursor)} disabled={load.busy}>
          Older entries
        </button>
      ) : null}
    </section>
  );
}
