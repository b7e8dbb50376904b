/**
 * Text canonicalisation, so the same text pasted as plain text or as simple HTML gets one content hash.
 * Rules are the product spec's, step by step; each choice the spec leaves open is noted where it is made.
 */

/** Stable reasons content is refused; callers branch on these, never on the message. */
export type ContentErrorCode = "NO_TEXT_CONTENT" | "EMPTY_FILE" | "INVALID_HASH" | "VALIDATION_ERROR";

/** Content refused for a stable `code`, with a message fit to show a person. */
export class ContentError extends Error {
  readonly code: ContentErrorCode;

  constructor(code: ContentErrorCode, message: string) {
    super(message);
    this.name = "ContentError";
    this.code = code;
  }
}

// HTML's whitespace (tab, LF, FF, space); CR cannot appear after step 1.
const TAG_SPACE = "[\\t\\n\\f ]";
// Attributes part of a tag: whitespace first, then anything but `<`/`>`; the optional `/` makes `<x/>` a tag too.
const TAG_TAIL = `(?:${TAG_SPACE}[^<>]*)?\\/?>`;

// Step 2: tag names are ASCII only, so `<3`, `< b` and `<!-- -->` alone never make text markup.
const MARKUP_TAG = new RegExp(`<\\/?[A-Za-z][A-Za-z0-9-]*${TAG_TAIL}`);

// Step 3a: the close may have whitespace before `>`; an unclosed script/style is dropped to the end, as browsers hide it.
const SCRIPT_OR_STYLE = new RegExp(`<(script|style)${TAG_TAIL}[\\s\\S]*?(?:<\\/\\1${TAG_SPACE}*>|$)`, "gi");

// Step 3c: exactly the three spelled forms; `<br class=x>`, `<br  />` and `</br>` fall to step 3e and vanish.
const LINE_BREAK = /<br(?:\/| \/)?>/gi;

// Step 3d: tag names match in any case, like HTML (the spec says "any case" only for script/style and br).
const BLOCK_TAG = new RegExp(
  "<\\/?(?:p|div|section|article|h[1-6]|li|tr|blockquote|pre|figcaption|header|footer|main|aside|ul|ol|table|hr)" + TAG_TAIL,
  "gi",
);

// Step 3f: `&#X…;` is accepted like `&#x…;` (as HTML does); named entities are case-sensitive, as in HTML.
const ENTITY = /&(?:#([0-9]+)|#[xX]([0-9A-Fa-f]+)|(amp|lt|gt|quot|apos|nbsp));/g;

const NAMED_ENTITIES: ReadonlyMap<string, string> = new Map([
  ["amp", "&"],
  ["lt", "<"],
  ["gt", ">"],
  ["quot", '"'],
  ["apos", "'"],
  ["nbsp", "\u00A0"],
]);

// Unicode White_Space (so NBSP-only text is refused); U+FEFF and zero-width characters are not whitespace.
const WHITESPACE_ONLY = /^\p{White_Space}*$/u;

// With the `u` flag a paired surrogate is one code point, so this only finds unpaired halves.
const UNPAIRED_SURROGATE = /\p{Cs}/u;

/**
 * Canonical form of a text, the input to its content hash.
 * Throws ContentError VALIDATION_ERROR for unpaired surrogates, NO_TEXT_CONTENT for empty or whitespace-only text.
 */
export function canonicaliseText(text: string): string {
  assertWellFormed(text);
  const unixText = normaliseLineEndings(text);
  const canonical = MARKUP_TAG.test(unixText) ? stripMarkup(unixText) : unixText;
  // Whitespace-only is refused for plain text too, not only for text left empty by step 3.
  if (WHITESPACE_ONLY.test(canonical)) {
    throw new ContentError("NO_TEXT_CONTENT", "The text is empty or has only whitespace once markup is removed.");
  }
  return canonical;
}

/** Refuses unpaired UTF-16 surrogates, which have no UTF-8 encoding. */
export function assertWellFormed(text: string): void {
  // Checked on the input, so markup removal can neither hide nor pair up a broken surrogate.
  if (UNPAIRED_SURROGATE.test(text)) {
    throw new ContentError("VALIDATION_ERROR", "The text contains an unpaired UTF-16 surrogate and has no UTF-8 form.");
  }
}

/** Step 1: CRLF and lone CR become LF. */
function normaliseLineEndings(text: string): string {
  return text.replace(/\r\n?/g, "\n");
}

/** Step 3, in the spec's order. */
function stripMarkup(text: string): string {
  let result = text.replace(SCRIPT_OR_STYLE, "");
  result = dropComments(result);
  result = result.replace(LINE_BREAK, "\n");
  result = result.replace(BLOCK_TAG, "\n");
  result = dropRemainingTags(result);
  result = decodeEntities(result);
  result = result.replace(/\n{3,}/g, "\n\n");
  return trimBlankLines(result);
}

/** Step 3b: drops `<!-- … -->`; an unclosed `<!--` is kept for step 3e. */
function dropComments(text: string): string {
  // A scan rather than a lazy regex, so many unclosed `<!--` cannot make this quadratic.
  let result = "";
  let from = 0;
  for (;;) {
    const open = text.indexOf("<!--", from);
    const close = open === -1 ? -1 : text.indexOf("-->", open + 4);
    if (close === -1) return result + text.slice(from);
    result += text.slice(from, open);
    from = close + 3;
  }
}

/** Step 3e: drops every `<` up to the next `>`; a `<` with no later `>` and the rest of the text are kept. */
function dropRemainingTags(text: string): string {
  // A scan rather than /<[^>]*>/, which is quadratic on many `<` without a `>`.
  let result = "";
  let from = 0;
  for (;;) {
    const open = text.indexOf("<", from);
    const close = open === -1 ? -1 : text.indexOf(">", open + 1);
    if (close === -1) return result + text.slice(from);
    result += text.slice(from, open);
    from = close + 1;
  }
}

/** Step 3f: one pass, so `&amp;lt;` becomes `&lt;`, not `<`. */
function decodeEntities(text: string): string {
  return text.replace(ENTITY, (entity, decimal?: string, hex?: string, name?: string) => {
    if (name !== undefined) return NAMED_ENTITIES.get(name) ?? entity;
    const codePoint = decimal !== undefined ? Number.parseInt(decimal, 10) : Number.parseInt(hex ?? "", 16);
    // No HTML remapping: `&#0;` is U+0000 and `&#128;` is U+0080, as the spec says "code point".
    return isScalarValue(codePoint) ? String.fromCodePoint(codePoint) : entity;
  });
}

/** A code point UTF-8 can carry: at most U+10FFFF and not a surrogate. */
function isScalarValue(codePoint: number): boolean {
  return codePoint <= 0x10ffff && !(codePoint >= 0xd800 && codePoint <= 0xdfff);
}

/** Step 3h: drops leading blank lines and trailing blank lines, keeping the first line's indent and the last line's trailing spaces. */
function trimBlankLines(text: string): string {
  // Scans instead of /\n[ \t\n]*$/, which is quadratic on long whitespace runs.
  let start = 0;
  while (start < text.length && isBlankChar(text[start])) start++;
  const prefixEnd = text.lastIndexOf("\n", start - 1) + 1;

  let end = text.length;
  while (end > prefixEnd && isBlankChar(text[end - 1])) end--;
  const suffixStart = text.indexOf("\n", end);

  return text.slice(prefixEnd, suffixStart === -1 ? text.length : suffixStart);
}

function isBlankChar(char: string): boolean {
  return char === " " || char === "\t" || char === "\n";
}
