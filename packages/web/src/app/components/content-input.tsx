import { useEffect, useState } from "preact/hooks";
import { hashFile, hashText, parseContentHash } from "../hashing.js";
import { describeError } from "./ui.js";

export type ContentKind = "text" | "file" | "hash";

/** The work as entered, and its content hash as computed in this browser (or why there is none). */
export interface ContentEntry {
  kind: ContentKind;
  text: string;
  file: File | undefined;
  hash: string | undefined;
  problem: string | undefined;
}

const EMPTY: ContentEntry = { kind: "text", text: "", file: undefined, hash: undefined, problem: undefined };

const KIND_LABELS: Record<ContentKind, string> = { text: "Text", file: "File", hash: "Hash" };

/**
 * Text to paste, a file to drop or choose, or (for lookups) a hash: hashed here as it is
 * entered, with the same canonicalisation the API uses. Nothing is sent from this component.
 */
export function ContentInput(props: { id: string; kinds: ContentKind[]; onChange: (entry: ContentEntry) => void; textLabel?: string }) {
  const [entry, setEntry] = useState<ContentEntry>({ ...EMPTY, kind: props.kinds[0] });
  const [dragging, setDragging] = useState(false);
  const [hashing, setHashing] = useState(false);
  useEffect(() => props.onChange(entry), [entry]);

  const setKind = (kind: ContentKind) => setEntry({ ...EMPTY, kind });
  const onText = (text: string) => {
    if (text === "") return setEntry({ ...entry, text, hash: undefined, problem: undefined });
    try {
      setEntry({ ...entry, text, hash: hashText(text), problem: undefined });
    } catch (error) {
      setEntry({ ...entry, text, hash: undefined, problem: describeError(error) });
    }
  };
  const onHash = (text: string) => {
    if (text.trim() === "") return setEntry({ ...entry, text, hash: undefined, problem: undefined });
    try {
      setEntry({ ...entry, text, hash: parseContentHash(text.trim()), problem: undefined });
    } catch (error) {
      setEntry({ ...entry, text, hash: undefined, problem: describeError(error) });
    }
  };
  const onFile = async (file: File | undefined) => {
    if (!file) return setEntry({ ...entry, file: undefined, hash: undefined, problem: undefined });
    setHashing(true);
    setEntry({ ...entry, file, hash: undefined, problem: undefined });
    try {
      const hash = await hashFile(file);
      setEntry((latest) => (latest.file === file ? { ...latest, hash, problem: undefined } : latest));
    } catch (error) {
      setEntry((latest) => (latest.file === file ? { ...latest, hash: undefined, problem: describeError(error) } : latest));
    } finally {
      setHashing(false);
    }
  };
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    const file = event.dataTransfer?.files?.[0];
    if (file) void onFile(file);
  };

  const id = props.id;
  return (
    <div class="content-input">
      {props.kinds.length > 1 ? (
        <fieldset class="segmented">
          <legend>What do you have?</legend>
          {props.kinds.map((kind) => (
            <label key={kind}>
              <input type="radio" name={`${id}-kind`} value={kind} checked={entry.kind === kind} onChange={() => setKind(kind)} />
              {KIND_LABELS[kind]}
            </label>
          ))}
        </fieldset>
      ) : null}
      {entry.kind === "text" ? (
        <div class="field">
          <label for={`${id}-text`}>{props.textLabel ?? "Your text"}</label>
          <textarea
            id={`${id}-text`}
            rows={8}
            value={entry.text}
            onInput={(event) => onText((event.target as HTMLTextAreaElement).value)}
            aria-describedby={`${id}-hash`}
          />
          <span class="hint">Plain text or simple HTML: markup is removed before hashing, so both give the same hash.</span>
        </div>
      ) : entry.kind === "file" ? (
        // biome-ignore lint/a11y/noStaticElementInteractions: dropping is a mouse shortcut; the file input inside is the keyboard way
        <div
          class={`field dropzone${dragging ? " dragging" : ""}`}
          onDragOver={(event) => {
            event.preventDefault();
            setDragging(true);
          }}
          onDragLeave={() => setDragging(false)}
          onDrop={onDrop}
        >
          <label for={`${id}-file`}>Choose a file, or drop it here</label>
          <input
            id={`${id}-file`}
            type="file"
            onChange={(event) => onFile((event.target as HTMLInputElement).files?.[0])}
            aria-describedby={`${id}-hash`}
          />
          {entry.file ? (
            <span class="hint">
              {entry.file.name} · {entry.file.size.toLocaleString()} bytes
            </span>
          ) : (
            <span class="hint">Any kind of file. It is read in this browser and not uploaded.</span>
          )}
        </div>
      ) : (
        <div class="field">
          <label for={`${id}-hash-input`}>Content hash</label>
          <input
            id={`${id}-hash-input`}
            class="mono"
            value={entry.text}
            placeholder="sha256:… or 64 hex digits"
            spellcheck={false}
            autocomplete="off"
            onInput={(event) => onHash((event.target as HTMLInputElement).value)}
            aria-describedby={`${id}-hash`}
          />
        </div>
      )}
      <p id={`${id}-hash`} class="computed-hash" aria-live="polite">
        {hashing ? (
          "Hashing in your browser…"
        ) : entry.problem ? (
          <span class="field-error">{entry.problem}</span>
        ) : entry.hash ? (
          <>
            {entry.kind === "hash" ? "Hash: " : "Content hash, computed in your browser: "}
            <code data-testid="computed-hash">{entry.hash}</code>
          </>
        ) : null}
      </p>
    </div>
  );
}
