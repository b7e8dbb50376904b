import type {
  DaonClient,
  IssuedPlatformKey,
  PlatformIdentity,
  PlatformKey,
  PlatformScope,
  Usage,
  Webhook,
  WebhookDelivery,
  WebhookEvent,
  WebhookTestResult,
} from "@daon/sdk";
import { useEffect, useMemo, useState } from "preact/hooks";
import { UsageChart } from "../components/usage-chart.js";
import { Alert, CopyField, describeError, formatTime, TableWrap, useAction, usePageTitle } from "../components/ui.js";
import { platformClient, platformKeyStore } from "../session.js";

const SCOPES: { value: PlatformScope; label: string }[] = [
  { value: "broker:register", label: "Register works" },
  { value: "broker:verify", label: "Look up works" },
  { value: "broker:transfer", label: "Transfer works" },
  { value: "broker:webhooks", label: "Manage webhooks" },
];
const EVENTS: { value: WebhookEvent; label: string }[] = [
  { value: "content.protected", label: "A work is registered (content.protected)" },
  { value: "content.confirmed", label: "A work is on the ledger (content.confirmed)" },
  { value: "content.transferred", label: "A work changes owner (content.transferred)" },
];

/** The platform console: with a platform key, its keys, webhooks and usage. */
export function ConsolePage() {
  usePageTitle("Platform console");
  const [key, setKey] = useState(platformKeyStore.get());
  const [identity, setIdentity] = useState<PlatformIdentity | undefined>();
  const [error, setError] = useState<string | undefined>();
  const daon = useMemo(() => (key ? platformClient(key) : undefined), [key]);
  useEffect(() => {
    if (!daon) return setIdentity(undefined);
    daon.platform
      .whoami()
      .then(setIdentity)
      .catch((caught) => {
        setError(describeError(caught));
        platformKeyStore.set(undefined);
        setKey(undefined);
      });
  }, [key]);
  const forget = () => {
    platformKeyStore.set(undefined);
    setKey(undefined);
    setIdentity(undefined);
  };
  return (
    <>
      <h1 tabIndex={-1}>Platform console</h1>
      {error ? <Alert kind="error">{error}</Alert> : null}
      {!key || !daon ? (
        <KeyEntry
          onKey={(value) => {
            setError(undefined);
            platformKeyStore.set(value);
            setKey(value);
          }}
        />
      ) : !identity ? (
        <p aria-live="polite">Checking the key…</p>
      ) : (
        <>
          <Overview identity={identity} onForget={forget} />
          <Keys
            daon={daon}
            current={identity.api_key.id}
            onUseKey={(value) => {
              platformKeyStore.set(value);
              setKey(value);
            }}
          />
          {identity.api_key.scopes.includes("broker:webhooks") ? <Webhooks daon={daon} /> : null}
          <UsageSection daon={daon} />
        </>
      )}
    </>
  );
}

function KeyEntry(props: { onKey: (key: string) => void }) {
  const [value, setValue] = useState("");
  return (
    <form
      class="card narrow"
      onSubmit={(event) => {
        event.preventDefault();
        if (value.trim()) props.onKey(value.trim());
      }}
    >
      <p>Enter a key of your platform. It is kept in this tab only, and forgotten when you close it.</p>
      <div class="field">
        <label for="platform-key">Platform key</label>
        <input
          id="platform-key"
          type="password"
          class="mono"
          autocomplete="off"
          placeholder="DAON_BR_…"
          value={value}
          onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        />
      </div>
      <button type="submit" disabled={!value.trim()}>
        Open the console
      </button>
    </form>
  );
}

function Overview(props: { identity: PlatformIdentity; onForget: () => void }) {
  const { broker, api_key } = props.identity;
  return (
    <section class="card" aria-labelledby="platform-heading">
      <h2 id="platform-heading">{broker.name}</h2>
      <dl class="facts">
        <dt>Domain</dt>
        <dd>{broker.domain}</dd>
        <dt>Status</dt>
        <dd>{broker.certification_status}</dd>
        <dt>Tier</dt>
        <dd>
          {broker.certification_tier}: {broker.rate_limits.hourly.toLocaleString()} calls an hour,{" "}
          {broker.rate_limits.daily.toLocaleString()} a day
        </dd>
        <dt>This key</dt>
        <dd>
          <span class="mono">{api_key.prefix}…</span> ({api_key.name}): {api_key.scopes.join(", ")}
          {api_key.expires_at ? `, expires ${formatTime(api_key.expires_at)}` : ""}
        </dd>
      </dl>
      <button type="button" class="secondary" onClick={props.onForget}>
        Forget this key
      </button>
    </section>
  );
}

function ShownOnce(props: { issued: IssuedPlatformKey; onUse?: () => void }) {
  return (
    <div class="shown-once">
      <Alert kind="success">Key “{props.issued.key.name}” created. Copy it now: it is not shown again.</Alert>
      <CopyField id={`new-key-${props.issued.key.id}`} label="New platform key" value={props.issued.api_key} />
      {props.onUse ? (
        <button type="button" class="secondary" onClick={props.onUse}>
          Use the new key in this console
        </button>
      ) : null}
    </div>
  );
}

function Keys(props: { daon: DaonClient; current: string; onUseKey: (key: string) => void }) {
  const [keys, setKeys] = useState<PlatformKey[]>([]);
  const [issued, setIssued] = useState<{ key: IssuedPlatformKey; rotated: boolean } | undefined>();
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState<PlatformScope[]>(SCOPES.map((s) => s.value));
  const [confirming, setConfirming] = useState<string | undefined>();
  const load = useAction(async () => setKeys(await props.daon.platform.keys()));
  useEffect(() => {
    void load.run();
  }, [props.daon]);
  const create = useAction(async () => {
    setIssued({ key: await props.daon.platform.createKey({ name: name.trim(), scopes }), rotated: false });
    setName("");
    await load.run();
  });
  const rotate = useAction(async () => {
    setIssued({ key: await props.daon.platform.rotateKey({ overlap_hours: 24 }), rotated: true });
    await load.run();
  });
  const revoke = useAction(async (id: string) => {
    await props.daon.platform.revokeKey(id);
    setConfirming(undefined);
    await load.run();
  });
  return (
    <section class="card" aria-labelledby="keys-heading">
      <h2 id="keys-heading">API keys</h2>
      {load.error || create.error || rotate.error || revoke.error ? (
        <Alert kind="error">{load.error ?? create.error ?? rotate.error ?? revoke.error}</Alert>
      ) : null}
      {issued ? <ShownOnce issued={issued.key} onUse={issued.rotated ? () => props.onUseKey(issued.key.api_key) : undefined} /> : null}
      <TableWrap label="API keys">
        <table>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Prefix</th>
              <th scope="col">Scopes</th>
              <th scope="col">Status</th>
              <th scope="col">Last used</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {keys.map((key) => (
              <tr key={key.id}>
                <td>
                  {key.name}
                  {key.id === props.current ? " (this console)" : ""}
                </td>
                <td class="mono">{key.prefix}…</td>
                <td>{key.scopes.map((s) => s.replace("broker:", "")).join(", ")}</td>
                <td>
                  {key.status}
                  {key.status === "active" && key.expires_at ? `, until ${formatTime(key.expires_at)}` : ""}
                </td>
                <td>{formatTime(key.last_used_at)}</td>
                <td>
                  {key.status !== "active" ? null : confirming === key.id ? (
                    <span class="button-row">
                      <button type="button" class="danger small" onClick={() => revoke.run(key.id)} disabled={revoke.busy}>
                        Revoke now<span class="visually-hidden"> {key.name}</span>
                      </button>
                      <button type="button" class="secondary small" onClick={() => setConfirming(undefined)}>
                        Cancel
                      </button>
                    </span>
                  ) : (
                    <button type="button" class="secondary small" onClick={() => setConfirming(key.id)}>
                      Revoke<span class="visually-hidden"> {key.name}</span>
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      <form
        class="inline-form"
        aria-labelledby="new-key-heading"
        onSubmit={(event) => {
          event.preventDefault();
          void create.run();
        }}
      >
        <h3 id="new-key-heading">Create a key</h3>
        <div class="field">
          <label for="new-key-name">Name</label>
          <input id="new-key-name" required maxLength={100} value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </div>
        <fieldset class="choices compact">
          <legend>Scopes</legend>
          {SCOPES.map((scope) => (
            <label key={scope.value} class="choice">
              <input
                type="checkbox"
                checked={scopes.includes(scope.value)}
                onChange={(e) =>
                  setScopes((e.target as HTMLInputElement).checked ? [...scopes, scope.value] : scopes.filter((s) => s !== scope.value))
                }
              />
              <span>{scope.label}</span>
            </label>
          ))}
        </fieldset>
        <div class="button-row">
          <button type="submit" disabled={create.busy || !name.trim() || scopes.length === 0}>
            Create key
          </button>
          <button type="button" class="secondary" onClick={() => rotate.run()} disabled={rotate.busy}>
            Rotate this console's key
          </button>
        </div>
        <p class="hint">Rotating makes a new key with the same scopes; the current one keeps working for 24 hours.</p>
      </form>
    </section>
  );
}

function Webhooks(props: { daon: DaonClient }) {
  const [webhooks, setWebhooks] = useState<Webhook[]>([]);
  const [url, setUrl] = useState("");
  const [description, setDescription] = useState("");
  const [events, setEvents] = useState<WebhookEvent[]>(["content.protected", "content.confirmed"]);
  const [secret, setSecret] = useState<string | undefined>();
  const load = useAction(async () => setWebhooks((await props.daon.webhooks.list({ limit: 100 })).items));
  useEffect(() => {
    void load.run();
  }, [props.daon]);
  const create = useAction(async () => {
    const created = await props.daon.webhooks.create({
      url: url.trim(),
      events,
      ...(description.trim() ? { description: description.trim() } : {}),
    });
    setSecret(created.secret);
    setUrl("");
    setDescription("");
    await load.run();
  });
  return (
    <section class="card" aria-labelledby="webhooks-heading">
      <h2 id="webhooks-heading">Webhooks</h2>
      {load.error ? <Alert kind="error">{load.error}</Alert> : null}
      {webhooks.length === 0 && !load.busy ? <p>No webhooks yet.</p> : null}
      {webhooks.map((webhook) => (
        <WebhookPanel key={webhook.id} daon={props.daon} webhook={webhook} onDeleted={() => load.run()} />
      ))}
      <form
        class="inline-form"
        aria-labelledby="new-webhook-heading"
        onSubmit={(event) => {
          event.preventDefault();
          void create.run();
        }}
      >
        <h3 id="new-webhook-heading">Add a webhook</h3>
        <div class="field">
          <label for="webhook-url">URL (https)</label>
          <input id="webhook-url" type="url" required value={url} onInput={(e) => setUrl((e.target as HTMLInputElement).value)} />
        </div>
        <div class="field">
          <label for="webhook-description">Description (optional)</label>
          <input id="webhook-description" value={description} onInput={(e) => setDescription((e.target as HTMLInputElement).value)} />
        </div>
        <fieldset class="choices compact">
          <legend>Events</legend>
          {EVENTS.map((event) => (
            <label key={event.value} class="choice">
              <input
                type="checkbox"
                checked={events.includes(event.value)}
                onChange={(e) =>
                  setEvents((e.target as HTMLInputElement).checked ? [...events, event.value] : events.filter((v) => v !== event.value))
                }
              />
              <span>{event.label}</span>
            </label>
          ))}
        </fieldset>
        <button type="submit" disabled={create.busy || !url.trim() || events.length === 0}>
          Add webhook
        </button>
        {create.error ? <Alert kind="error">{create.error}</Alert> : null}
        {secret ? (
          <div class="shown-once">
            <Alert kind="success">Webhook added. Its signing secret is shown this once: your receiver checks each delivery with it.</Alert>
            <CopyField id="webhook-secret" label="Signing secret" value={secret} />
          </div>
        ) : null}
      </form>
    </section>
  );
}

function WebhookPanel(props: { daon: DaonClient; webhook: Webhook; onDeleted: () => void }) {
  const { webhook } = props;
  const [ping, setPing] = useState<WebhookTestResult | undefined>();
  const [deliveries, setDeliveries] = useState<WebhookDelivery[] | undefined>();
  const test = useAction(async () => setPing(await props.daon.webhooks.test(webhook.id)));
  const log = useAction(async () => setDeliveries((await props.daon.webhooks.deliveries(webhook.id, { limit: 50 })).items));
  const redeliver = useAction(async (deliveryId: string) => {
    await props.daon.webhooks.redeliver(webhook.id, deliveryId);
    await log.run();
  });
  const remove = useAction(async () => {
    await props.daon.webhooks.delete(webhook.id);
    props.onDeleted();
  });
  const problem = test.error ?? log.error ?? redeliver.error ?? remove.error;
  return (
    <article class="webhook" aria-label={`Webhook ${webhook.url}`}>
      <h3 class="mono wrap">{webhook.url}</h3>
      <p>
        {webhook.enabled ? "Enabled" : "Disabled"} · {webhook.events.join(", ")}
        {webhook.description ? ` · ${webhook.description}` : ""} · last triggered {formatTime(webhook.last_triggered_at)}
      </p>
      <div class="button-row">
        <button type="button" class="secondary small" onClick={() => test.run()} disabled={test.busy}>
          {test.busy ? "Sending…" : "Send a test ping"}
        </button>
        <button type="button" class="secondary small" onClick={() => log.run()} disabled={log.busy}>
          {deliveries ? "Refresh deliveries" : "Show deliveries"}
        </button>
        <button type="button" class="danger small" onClick={() => remove.run()} disabled={remove.busy}>
          Delete webhook
        </button>
      </div>
      {problem ? <Alert kind="error">{problem}</Alert> : null}
      {ping ? (
        <Alert kind={ping.delivered ? "success" : "error"}>
          {ping.delivered
            ? `Test ping delivered: the receiver answered ${ping.status_code} in ${ping.duration_ms} ms.`
            : `Test ping not delivered: ${ping.error ?? `the receiver answered ${ping.status_code}`}.`}
        </Alert>
      ) : null}
      {deliveries ? (
        deliveries.length === 0 ? (
          <p>No deliveries yet.</p>
        ) : (
          <TableWrap label={`Deliveries of ${webhook.url}`}>
            <table>
              <thead>
                <tr>
                  <th scope="col">Event</th>
                  <th scope="col">Status</th>
                  <th scope="col">Attempts</th>
                  <th scope="col">Last answer</th>
                  <th scope="col">Next attempt</th>
                  <th scope="col">
                    <span class="visually-hidden">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {deliveries.map((delivery) => (
                  <tr key={delivery.id}>
                    <td>{delivery.event}</td>
                    <td>{delivery.status}</td>
                    <td>{delivery.attempts}</td>
                    <td>{delivery.last_error ?? delivery.last_status_code ?? "—"}</td>
                    <td>{formatTime(delivery.next_attempt_at)}</td>
                    <td>
                      {delivery.status === "success" || delivery.status === "dead" ? (
                        <button type="button" class="secondary small" onClick={() => redeliver.run(delivery.id)} disabled={redeliver.busy}>
                          Redeliver<span class="visually-hidden"> {delivery.event}</span>
                        </button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        )
      ) : null}
    </article>
  );
}

function UsageSection(props: { daon: DaonClient }) {
  const [usage, setUsage] = useState<Usage | undefined>();
  const load = useAction(async () => setUsage(await props.daon.platform.usage()));
  useEffect(() => {
    void load.run();
  }, [props.daon]);
  return (
    <section class="card" aria-labelledby="usage-heading">
      <h2 id="usage-heading">Usage, last 7 days</h2>
      {load.error ? <Alert kind="error">{load.error}</Alert> : null}
      {usage ? (
        <>
          <p>
            {usage.summary.total_requests.toLocaleString()} calls, {usage.summary.total_errors.toLocaleString()} refused or failed, average{" "}
            {usage.summary.avg_response_time} ms.
          </p>
          <UsageChart
            rows={usage.usage}
            start={usage.start_date ?? new Date(Date.now() - 7 * 86_400_000).toISOString()}
            end={usage.end_date ?? new Date().toISOString()}
          />
        </>
      ) : (
        <p aria-live="polite">Loading…</p>
      )}
    </section>
  );
}
