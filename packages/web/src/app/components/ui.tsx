import { ContentError, DaonApiError, DaonError, DaonNetworkError, DaonTimeoutError } from "@daon/sdk";
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { hasNavigated } from "../router.js";

/** A message fit to show a person, for anything a call may throw. */
export function describeError(error: unknown): string {
  if (error instanceof DaonApiError) {
    switch (error.code) {
      case "RATE_LIMITED":
      case "QUOTA_EXCEEDED":
        return `Too many requests just now. Try again in ${error.retryAfterSeconds ?? 60} seconds.`;
      case "SERVICE_UNAVAILABLE":
        return `DAON cannot reach its ${(error.details?.dependency as string) ?? "services"} right now. Try again shortly.`;
      case "INVALID_CODE":
        return "That code is not right (or was already used). Enter the current code from your authenticator app.";
      case "INVALID_TOKEN":
        return "This sign-in link or session is no longer valid. Ask for a new link.";
      case "UNAUTHORIZED":
      case "TOKEN_EXPIRED":
        return "You are not signed in, or your session has ended. Sign in again.";
      case "NOT_OWNER":
        return "You do not own this work.";
      case "NOT_CONFIRMED":
        return "This work is not on the ledger yet. Try again in a few seconds.";
      case "TRANSFER_PENDING":
        return "A transfer of this work is already under way.";
      case "PAYLOAD_TOO_LARGE":
        return "This is too large to send.";
      default:
        return error.message.replace(/^[A-Z_]+: /, "");
    }
  }
  if (error instanceof ContentError) return error.message;
  if (error instanceof DaonTimeoutError) return "DAON did not answer in time. Check your connection and try again.";
  if (error instanceof DaonNetworkError) return "DAON could not be reached. Check your connection and try again.";
  if (error instanceof DaonError || error instanceof Error) return error.message;
  return String(error);
}

export function Alert(props: { kind: "error" | "success" | "info"; children: ComponentChildren }) {
  // Errors interrupt (role=alert); other news waits its turn (role=status).
  return (
    <div class={`alert alert-${props.kind}`} role={props.kind === "error" ? "alert" : "status"}>
      {props.children}
    </div>
  );
}

/** Runs an async action with busy and error state, for forms and buttons. */
export function useAction<A extends unknown[], T>(action: (...args: A) => Promise<T>) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const run = async (...args: A): Promise<T | undefined> => {
    setBusy(true);
    setError(undefined);
    try {
      return await action(...args);
    } catch (caught) {
      setError(describeError(caught));
      return undefined;
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, run, setError };
}

async function copyText(text: string): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false;
  }
}

/** A read-only value with a Copy button; the value is selectable by hand too. */
export function CopyField(props: { label: string; value: string; multiline?: boolean; id: string }) {
  const [copied, setCopied] = useState<"yes" | "no" | undefined>();
  const input = useRef<HTMLInputElement & HTMLTextAreaElement>(null);
  const copy = async () => {
    input.current?.select();
    setCopied((await copyText(props.value)) ? "yes" : "no");
  };
  return (
    <div class="copy-field">
      <label for={props.id}>{props.label}</label>
      <div class="copy-row">
        {props.multiline ? (
          <textarea id={props.id} ref={input} readOnly rows={3} value={props.value} />
        ) : (
          <input id={props.id} ref={input} readOnly value={props.value} />
        )}
        <button type="button" class="secondary" onClick={copy}>
          Copy<span class="visually-hidden"> {props.label}</span>
        </button>
      </div>
      <span class="copy-note" aria-live="polite">
        {copied === "yes" ? "Copied." : copied === "no" ? "Select the text and copy it by hand." : ""}
      </span>
    </div>
  );
}

/** Offers JSON as a file to download. */
export function downloadJson(name: string, value: unknown): void {
  const url = URL.createObjectURL(new Blob([`${JSON.stringify(value, null, 2)}\n`], { type: "application/json" }));
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Sets the document title and moves focus to the page's heading, so screen readers announce the new page. */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · DAON`;
    if (!hasNavigated()) return;
    const heading = document.querySelector<HTMLElement>("main h1");
    if (heading && document.activeElement !== heading && !document.activeElement?.closest("main form"))
      heading.focus({ preventScroll: true });
  }, [title]);
}

export const shortHash = (hash: string) => `${hash.slice(0, 10)}…${hash.slice(-6)}`;

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return `${date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium", timeZone: "UTC" })} UTC`;
}

/** A table that scrolls sideways on narrow screens; focusable so keyboards can scroll it. */
export function TableWrap(props: { label: string; children: ComponentChildren }) {
  return (
    // biome-ignore lint/a11y/noNoninteractiveTabindex: a scrollable region must be reachable by keyboard (WCAG 2.1.1)
    <section class="table-wrap" tabIndex={0} aria-label={props.label}>
      {props.children}
    </section>
  );
}
