import assert from "node:assert/strict";
import { Agent, type IncomingHttpHeaders, METHODS, type OutgoingHttpHeaders, request } from "node:http";
import { connect } from "node:net";
import { hostname } from "node:os";
import { Readable } from "node:stream";
import { after, before, describe, test } from "node:test";
import { POSTGRES_ADMIN_URL, REDIS_URL, STORAGE_PATHS, startTestSystem, type TestSystem } from "./test-system.js";

/**
 * Bad input (api.md §1, §2.2–2.5, §7): at least 10,000 malformed or hostile requests per storage
 * path, generated from a fixed seed across every endpoint, each answered with the documented error
 * envelope — or, where the request is in fact valid, a success — with zero 5xx, no crash and no
 * hang. A smaller section floods past low rate limits and expects 429 RATE_LIMITED.
 */

const SEED = 0xa91_bad;
const CONCURRENCY = 32;
/** Above the longest wait a flood request asks for (?wait ≤ 3 s) and the final protect's PROTECT_WAIT_MS. */
const REQUEST_TIMEOUT_MS = 30_000;
const MIN_REQUESTS = 10_000;
const MiB = 1024 * 1024;
/** Node's default limit on a request's head (request line and headers). */
const HEADER_LIMIT = 16 * 1024;
const FLOOD_ENV = { RATE_LIMIT_MAX: "1000000000", PROTECT_RATE_LIMIT_MAX: "1000000000", PROTECT_WAIT_MS: "20000" };
const LIMITED_ENV = { RATE_LIMIT_MAX: "40", PROTECT_RATE_LIMIT_MAX: "8" };

/** The error codes of api.md §1 these endpoints may answer with, and their HTTP statuses. */
const STATUS_OF: Record<string, readonly number[]> = {
  VALIDATION_ERROR: [400, 417],
  MALFORMED_JSON: [400],
  INVALID_HASH: [400],
  NO_TEXT_CONTENT: [400],
  EMPTY_FILE: [400],
  UNAUTHORIZED: [401],
  NOT_FOUND: [404],
  NOT_CONFIRMED: [409],
  PAYLOAD_TOO_LARGE: [413, 431],
  UNSUPPORTED_MEDIA_TYPE: [415],
  RATE_LIMITED: [429],
};
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const EMPTY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/**
 * The flood's own client address, passed through the trusted loopback proxy: per-IP limits then
 * count in a bucket of this run, not in 127.0.0.1's, which on the postgres path is shared in Redis
 * with every other test running at the same time.
 */
const runTag = `${(process.pid >> 8) & 255}.${process.pid & 255}`;
const CLIENT_IP = `198.18.${runTag}`;

// ---------------------------------------------------------------------------------------------
// Seeded randomness

type Rng = ReturnType<typeof prng>;

/** mulberry32: small, fast and the same on every run. */
function prng(seed: number) {
  let state = seed >>> 0;
  const uint32 = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const next = () => uint32() / 4294967296;
  const int = (n: number) => Math.floor(next() * n);
  return {
    int,
    range: (lo: number, hi: number) => lo + int(hi - lo + 1),
    chance: (p: number) => next() < p,
    pick: <T>(items: readonly T[]): T => items[int(items.length)],
    bytes: (n: number) => {
      const out = Buffer.alloc(n + 3);
      for (let i = 0; i < n; i += 4) out.writeUInt32LE(uint32(), i);
      return out.subarray(0, n);
    },
    hex: (n: number) => {
      let out = "";
      while (out.length < n) out += uint32().toString(16).padStart(8, "0");
      return out.slice(0, n);
    },
    text: (n: number, alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") => {
      let out = "";
      for (let i = 0; i < n; i++) out += alphabet[int(alphabet.length)];
      return out;
    },
    shuffle: <T>(items: T[]): T[] => {
      for (let i = items.length - 1; i > 0; i--) {
        const j = int(i + 1);
        [items[i], items[j]] = [items[j], items[i]];
      }
      return items;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The hostile requests

/** `error`: the envelope; `success`: a 2xx success body; `any`: either (the request may be valid). */
type Expect = "error" | "success" | "any";

interface Hostile {
  category: string;
  method: string;
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: Buffer;
  /** Sent chunked, without Content-Length. */
  chunked?: boolean;
  /** A huge body of this many bytes, streamed between `body` (prefix) and `suffix` instead of held in memory. */
  size?: number;
  suffix?: Buffer;
  /** A connection of its own: for requests the server answers by closing it. */
  fresh?: boolean;
  expect: Expect;
  /** When set, the error code must be one of these. */
  codes?: readonly string[];
}

/** Bytes no HTTP client library would send: written to a socket as they are. */
interface RawHostile {
  category: "raw-http";
  bytes: Buffer;
  /** `closed`: the server may also just close the connection (CONNECT, which has no handler). */
  expect: Expect | "closed";
  /** The server waits for bytes that never come: close this side after a pause. */
  endAfterIdle?: boolean;
  codes?: readonly string[];
}

const ALPHA = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const PROTECT = "/api/v1/protect?wait=false";
const JSON_TYPE = { "content-type": "application/json" };
const OCTET_TYPE = { "content-type": "application/octet-stream" };
const json = (value: unknown) => Buffer.from(JSON.stringify(value));
const post = (category: string, path: string, body: Buffer | string, expect: Expect, extra: Partial<Hostile> = {}): Hostile => ({
  category,
  method: "POST",
  path,
  headers: JSON_TYPE,
  body: typeof body === "string" ? Buffer.from(body) : body,
  expect,
  ...extra,
});
const get = (category: string, path: string, expect: Expect, extra: Partial<Hostile> = {}): Hostile => ({
  category,
  method: "GET",
  path,
  expect,
  ...extra,
});
/** A path segment as a client would put it on the wire: anything outside printable ASCII percent-encoded. */
const segment = (text: string) => text.replace(/[^\x21-\x7e]|[%?#/]/gu, (c) => encodeURIComponent(c));

const isPlainObject = (value: unknown) => typeof value === "object" && value !== null && !Array.isArray(value);

const WRONG_VALUES: readonly unknown[] = [
  0,
  -1,
  1.5,
  -0,
  1e308,
  2 ** 64,
  true,
  false,
  null,
  [],
  [1, 2],
  [[]],
  [null],
  [7],
  ["one"],
  ["a", "b"],
  [{}],
  {},
  { a: { b: { c: 1 } } },
  { content: "nested" },
  { $gt: "" },
];

/** Odd but valid pieces of text: direction marks, zero-width, NUL, emoji, combining marks, rare planes. */
const ODD = [
  "\u200f",
  "\u200e",
  "\u202e",
  "\u2066",
  "\u2069",
  "\u200b",
  "\u200c",
  "\u200d",
  "\u2060",
  "\ufeff",
  "\u0000",
  "\u0007",
  "\u001b[31m",
  "\u{1f600}",
  "\u{1f469}\u200d\u{1f469}\u200d\u{1f467}\u200d\u{1f466}",
  "\u{1f3f3}\ufe0f\u200d\u{1f308}",
  "e\u0301",
  `Z${"\u0336\u0301\u0327".repeat(30)}`,
  "\ufdfa",
  "\u{1242b}",
  "\uffff",
  "\ufffe",
  "\u{10ffff}",
  "\u{e0001}",
  "\u216b",
  "\u2460",
  "\u0663",
  "\u00a0",
  "\u3000",
  "\u2028",
  "\u2029",
  "\r\n",
  "\r",
  "&#0;",
  "&#xD800;",
  "&nbsp;",
  "<p>",
  "<br/>",
  "\t",
  "مرحبا",
  "שלום",
  "日本語",
  "ﬀ",
  "İı",
];
/** The odd pieces a stored field (metadata, query fields) can hold: all but NUL. */
const ODD_STORABLE = ODD.filter((piece) => !piece.includes("\u0000"));
const LONE_SURROGATES = ["\ud800", "\udfff", "\udc00\ud800", "a\ud83d", "\ude00b", "\udbff"];
const BLANK = [" ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\u2028", "\u2029", "\u000b", "\u000c", "\u1680", "\u2003"];

const BAD_LICENCES = [
  "",
  " ",
  "mit",
  "gpl-3.0",
  "cc-by-4.0",
  "CC BY",
  "cc0 ",
  " cc0",
  "cc-0",
  "ccby",
  "cc_by_nc_nd",
  "cc-by-nd-sa",
  "liberation",
  "liberation_v2",
  "liberation-v1-",
  "all rights reserved",
  "copyleft",
  "public domain",
  "none",
  "null",
  "undefined",
  "\u0441\u04410",
  "\uff43\uff43\uff10",
  "cc0\u0000",
  "cc0\u200b",
  "cc0\ud800",
  "'; DROP TABLE works; --",
  "x".repeat(65),
  `$${"{"}jndi:ldap://x}`,
  "%s%s%s%n",
  "{{7*7}}",
  "<script>alert(1)</script>",
];
const BAD_POLICIES = [
  "",
  "allowed",
  "forbidden",
  "yes",
  "no",
  "true",
  "prohibit",
  "contact",
  "contact required",
  "contact__required",
  "open ",
  " open",
  "OPEN\u0000",
  "op\u00e9n",
  "\uff4f\uff50\uff45\uff4e",
  "x".repeat(33),
  "prohibited;open",
  "<b>open</b>",
];
const BAD_EMAILS = [
  "",
  "plain",
  "@example.com",
  "a@",
  "a@b",
  "a@@b.c",
  "a b@c.de",
  "a@b .c",
  "a@b.c ",
  " a@b.c",
  "a\n@b.c",
  "a@b.c\u0000",
  "a@b.c\ud800",
  "a@b,c",
  "a@b@c.d",
  `${"x".repeat(65)}@b.co`,
  `a@${"b".repeat(260)}.c`,
  `${"y".repeat(300)}@b.co`,
];
const BAD_URIS = [
  "",
  "x",
  "example.com",
  "//example.com",
  "ftp://example.com",
  "javascript:alert(1)",
  "data:text/html,<b>x</b>",
  "file:///etc/passwd",
  "mailto:a@b.c",
  "http://",
  "https://",
  "http://exa mple.com",
  "http://[::1",
  "http://a.b/\u0000",
  "http://a.b/\ud800",
  "ws://a.b",
  `https://${"a".repeat(2050)}.com`,
  `https://a.b/${"p".repeat(2040)}`,
  "h t t p://a.b",
  "http://%zz",
];
const UNICODE_DIGITS = ["\u0660", "\u0663", "\u0669", "\uff10", "\uff19", "\u0966", "\u07c0", "\u{1d7ce}", "\u0e51", "\u00b2", "\u2460"];
const PERCENT_GARBAGE = ["%", "%%", "%zz", "%E0%A4%A", "%00", "%FF%FE", "%C0%AF", "%ED%A0%80", "%2", "%%41", "%u0041", "%0A", "%0D%0A"];
const XFF_GARBAGE = [
  "garbage",
  "1.2.3.4.5",
  "::::",
  "999.999.999.999",
  "unknown",
  ", , ,",
  "203.0.113.9, garbage",
  "<script>alert(1)</script>",
  '"quoted"',
  "fe80::1%eth0",
  "::ffff:203.0.113.7",
  "[2001:db8::1]:80",
  "203.0.113.1:5678",
  "-1",
  "0",
  "2001:db8::zz",
];
const AUTH_GARBAGE = [
  "Bearer",
  "Bearer ",
  "Bearer x",
  "Bearer \u00ff\u00fe",
  "Basic Zm9vOmJhcg==",
  "Basic !!!",
  "DAON_BR_garbage",
  "Bearer DAON_BR_",
  "Bearer DAON_BR_0000000000000000000000000000000000000000",
  "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
  "Digest username=x",
  "Negotiate YII=",
  "bearer lowercase",
  `Bearer ${"t".repeat(8000)}`,
];
const BAD_CONTENT_TYPES = [
  "text/plain",
  "text/html",
  "application/xml",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=----x",
  "application/jsonx",
  "application/json-seq",
  "application/vnd.api+json",
  "application/ld+json",
  "image/png",
  "*/*",
  "application",
  "json",
  "text/json",
  "application/javascript",
];
const JSON_CHARSETS = [
  "application/json; charset=utf-8",
  "application/json; charset=UTF-8",
  "application/json;charset=utf-8",
  'application/json; charset="utf-8"',
  "application/json; charset=latin1",
  "application/json; charset=utf-16",
  "application/json; charset=",
  "application/json; foo=bar; charset=ascii",
  "APPLICATION/JSON",
  "Application/Json; Charset=UTF-8",
];
const ODD_METHODS = METHODS.filter((m) => !["GET", "HEAD", "POST", "OPTIONS", "CONNECT"].includes(m));
const UNKNOWN_METHODS = ["FOO", "GETS", "POSTX", "BREW", "HACK", "X"];
const UNKNOWN_ROUTES = [
  "/api/v2/protect",
  "/api/v1/protect/",
  "/API/V1/STATS",
  "/api/v1//stats",
  "/api/v1/verify",
  "/api/v1/verify/",
  "/api/v1/proof",
  "/api/v1/content//history",
  "/api/v1/content/x/history/extra",
  "/api/v1/protect/bulk",
  "/api/v1/me",
  "/api/v1/admin/users",
  "/api/v1/transfer",
  "/api/v1/user/profile",
  "/internal/auth/verify",
  "/internal/ops/status",
  "/metrics",
  "/.env",
  "/wp-login.php",
  "/%2e%2e/%2e%2e/etc/passwd",
  "/..%2f..%2fetc%2fpasswd",
  "/api/v1/stats%00",
  "/api/v1/stats;x=1",
  "/api/v1/stats/..",
  "/docs/static/%2e%2e%2fpackage.json",
  "/docs/nope",
  "/favicon.ico",
  "/robots.txt",
  "/%F0%9F%98%80",
  "/\u00e9",
  "/*",
  "/api/v1/verify/aa/bb",
  "/health/",
  "/healthz",
];

/** Everything the flood sends, from the seed: the HTTP requests and the raw bytes. */
function generate(rng: Rng): { requests: Hostile[]; raw: RawHostile[] } {
  const requests: Hostile[] = [];
  const add = (category: string, count: number, make: (category: string, i: number) => Hostile) => {
    for (let i = 0; i < count; i++) requests.push(make(category, i));
  };
  let seq = 0;
  const unique = (label: string) => `${label} ${++seq} ${rng.text(10)}`;
  const validHash = () => {
    const hex = rng.hex(64);
    return rng.chance(0.3) ? hex.toUpperCase() : hex;
  };
  /** A unique text with odd pieces inserted between its code points (never inside a surrogate pair). */
  const oddText = (label: string, pieces: readonly string[] = ODD) => {
    const points = [...unique(label)];
    for (let n = rng.range(1, 6), i = 0; i < n; i++) points.splice(rng.int(points.length + 1), 0, rng.pick(pieces));
    return points.join("");
  };
  const setPath = (target: Record<string, unknown>, path: string, value: unknown) => {
    const [head, tail] = path.split(".");
    if (tail === undefined) target[head] = value;
    else target[head] = { ...(target[head] as object), [tail]: value };
  };
  /** What a hash-taking GET does with this parameter: a bad hash, an unknown one, or the empty content's. */
  const hashRoute = (hash: string) =>
    rng.pick([`/api/v1/verify/${hash}`, `/api/v1/proof/${hash}`, `/api/v1/content/${hash}/history`, `/api/v1/transfer-history/${hash}`]);

  // 1. Wrong JSON types for every field of a protect body.
  const FIELDS = [
    "content",
    "contentHash",
    "metadata",
    "metadata.title",
    "metadata.description",
    "metadata.author",
    "metadata.type",
    "metadata.fingerprint",
    "license",
    "ai_training_policy",
    "licensing_email",
    "licensing_uri",
  ];
  add("wrong-types", 1500, (category) => {
    const field = rng.pick(FIELDS);
    const value = rng.pick(WRONG_VALUES);
    if (rng.chance(0.1)) {
      // verify-content takes only {content: string}: coerced scalars are looked up (404 or 200).
      return post(category, "/api/v1/verify-content", json({ content: value }), "any");
    }
    const body: Record<string, unknown> = field === "contentHash" || field === "content" ? {} : { content: unique(category) };
    setPath(body, field, value);
    let valid: boolean;
    // JSON bodies are not coerced: only a non-empty string is text.
    if (field === "content") valid = typeof value === "string" && value !== "";
    else if (field === "metadata") valid = isPlainObject(value);
    else if (field === "license" || field === "licensing_email" || field === "licensing_uri") valid = value === null;
    else if (field.startsWith("metadata.")) valid = value === null;
    else valid = false;
    return post(category, PROTECT, json(body), valid ? "success" : "error");
  });

  // 2. Both or neither of content and contentHash.
  add("content-and-hash", 400, (category) => {
    const shapes: (() => Record<string, unknown>)[] = [
      () => ({ content: unique(category), contentHash: validHash() }),
      () => ({ content: unique(category), contentHash: null }),
      () => ({ content: null, contentHash: validHash() }),
      () => ({ content: "", contentHash: validHash() }),
      () => ({}),
      () => ({ metadata: { title: "no content" } }),
      () => ({ license: "cc0", ai_training_policy: "open" }),
      () => ({ Content: unique(category) }),
      () => ({ content_hash: validHash() }),
      () => ({ contenthash: validHash() }),
      () => ({ "content ": unique(category) }),
      () => ({ body: unique(category) }),
    ];
    return post(category, PROTECT, json(rng.pick(shapes)()), "error", { codes: ["VALIDATION_ERROR", "NO_TEXT_CONTENT"] });
  });

  // 3. Bad JSON: truncated, trailing garbage, deeply nested, BOM, NaN, duplicate keys, not an object.
  const target = () => rng.pick([PROTECT, PROTECT, PROTECT, "/api/v1/verify-content", "/api/v1/verify-content", "/api/v1/nope", "/health"]);
  const nested = (depth: number, open: string, close: string, inner = "1") => `${open.repeat(depth)}${inner}${close.repeat(depth)}`;
  add("bad-json", 1400, (category) => {
    const path = target();
    const good = JSON.stringify({ content: unique(category), metadata: { title: "t" } });
    const malformed = (text: string | Buffer) => post(category, path, text, "error", { codes: ["MALFORMED_JSON"] });
    switch (rng.int(13)) {
      case 0:
        return malformed(good.slice(0, rng.range(1, good.length - 1)));
      case 1:
        return malformed(`${good}${rng.pick(["x", "}", "]", ",{}", "\u0000", " {}", '\n{"content":1}', "null", "//", "\u00ff"])}`);
      case 2: {
        const depth = rng.pick([10_000, 10_000, rng.range(1000, 20_000), 100_000]);
        const body = rng.pick([
          nested(depth, "[", "]", ""),
          nested(depth, '{"a":', "}"),
          `{"contentHash":"${"ab".repeat(32)}","metadata":{"deep":${nested(depth, "[", "]", "")}}}`,
          `{"content":${nested(depth, "[", "]", '"x"')}}`,
          `{"contentHash":${nested(depth, '{"a":', "}")}}`,
        ]);
        return post(category, path, body, "error");
      }
      case 3:
        return malformed(rng.pick([nested(10_000, "[", ""), nested(10_000, '{"a":', ""), `{"content":${"[".repeat(10_000)}`]));
      case 4:
        // A leading BOM is skipped by the parser; anywhere else it is not JSON.
        return rng.chance(0.5)
          ? post(category, path, `\ufeff${good}`, "any")
          : malformed(rng.pick([`{\ufeff"content":"x"}`, `\ufeff\ufeff${good}`, `${good}\ufeff`]));
      case 5: {
        const bad = rng.pick(["NaN", "Infinity", "-Infinity", "undefined", "0x10", "01", "1.", ".5", "+1", "1e", "--1", "tru", "nul"]);
        return malformed(rng.pick([`{"content":${bad}}`, `{"content":"x","metadata":{"n":${bad}}}`, bad]));
      }
      case 6:
        // Duplicate keys: the last one counts, as in JSON.parse.
        return rng.pick([
          post(category, path, `{"content":"${unique(category)}","content":"${unique(category)}"}`, "any"),
          post(
            category,
            PROTECT,
            `{"content":"${unique(category)}","contentHash":"${rng.hex(64)}","contentHash":"${rng.hex(64)}"}`,
            "error",
          ),
          post(category, PROTECT, `{"content":"${unique(category)}","metadata":{},"metadata":"x"}`, "error"),
          post(category, PROTECT, `{"content":"${unique(category)}","license":"cc0","license":"nope"}`, "error"),
        ]);
      case 7:
        return malformed(
          rng.pick([
            "{'content':'x'}",
            '{content:"x"}',
            '{"content":"x",}',
            '{"content":"x"/*c*/}',
            '// c\n{"content":"x"}',
            '{"content":"a\u0001b"}',
            '{"content":"a\nb"}',
            '{"content":"\\x41"}',
            '{"content":"\\u12"}',
            '{"content":"\\ud800\\u"}',
            '{"content":"unterminated}',
            '{"content" "x"}',
            '{"content":"x" "metadata":{}}',
            "{,}",
            "[,]",
            "{",
            "}",
            '"',
          ]),
        );
      case 8:
        return post(category, path, rng.pick(["1", '"x"', "null", "true", "false", "[]", "[{}]", '["content"]', "-0", "1e999"]), "error");
      case 9:
        return malformed(rng.pick(["", " ", "\n\t ", "\u0000", "\u00a0"]));
      case 10: {
        // Invalid UTF-8 inside a string: decoded as U+FFFD, so the text is valid.
        const bytes = rng.pick([[0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]]);
        const text = Buffer.from(unique(category));
        return post(category, path, Buffer.concat([Buffer.from('{"content":"'), text, Buffer.from(bytes), Buffer.from('"}')]), "any");
      }
      case 11:
        return malformed(
          rng.pick([
            '{"__proto__":{"admin":true},"content":"x"}',
            '{"content":"x","metadata":{"__proto__":{"polluted":1}}}',
            '{"constructor":{"prototype":{"polluted":1}},"content":"x"}',
          ]),
        );
      default: {
        const bytes = Buffer.concat([Buffer.from('{"content":'), rng.bytes(rng.range(1, 200))]);
        try {
          JSON.parse(bytes.toString("utf8"));
          return post(category, path, bytes, "any");
        } catch {
          return malformed(bytes);
        }
      }
    }
  });

  // 4. Huge bodies, streamed: over 1 MiB on non-content routes, over 10 MiB JSON, over 25 MiB octet-stream.
  const tooLarge = { codes: ["PAYLOAD_TOO_LARGE"], fresh: true } as const;
  add("huge-body", 20, (category, i) =>
    post(category, rng.pick(["/api/v1/nope", "/health", "/api/v1/stats", "/api/v1/verify/abc", "/api/v1"]), '{"content":"', "error", {
      ...tooLarge,
      codes: ["PAYLOAD_TOO_LARGE", "NOT_FOUND"],
      size: MiB + rng.range(1, 2 * MiB),
      suffix: Buffer.from('"}'),
      chunked: i % 2 === 1,
    }),
  );
  add("huge-body", 12, (category, i) =>
    post(category, rng.pick([PROTECT, "/api/v1/verify-content"]), '{"content":"', "error", {
      ...tooLarge,
      size: 10 * MiB + rng.range(1, MiB),
      suffix: Buffer.from('"}'),
      chunked: i % 2 === 1,
    }),
  );
  add("huge-body", 10, (category, i) =>
    post(category, rng.pick([PROTECT, "/api/v1/verify-content"]), "", "error", {
      ...tooLarge,
      headers: OCTET_TYPE,
      size: 25 * MiB + rng.range(1, MiB),
      chunked: i % 2 === 1,
    }),
  );
  add("huge-body", 8, (category) =>
    post(category, rng.pick(["/api/v1/nope", "/api/v1/stats"]), "", "error", {
      ...tooLarge,
      codes: ["PAYLOAD_TOO_LARGE", "NOT_FOUND"],
      headers: OCTET_TYPE,
      size: MiB + rng.range(1, MiB),
    }),
  );

  // 5. Bad hashes: length, non-hex, unicode digits, sha256: variants, percent garbage, very long.
  add("bad-hash", 1700, (category) => {
    const hex = rng.hex(64);
    const kind = rng.int(11);
    if (kind === 0) return get(category, hashRoute(rng.hex(rng.pick([rng.range(1, 63), rng.range(65, 200)]))), "error");
    if (kind === 1) {
      const chars = [...hex];
      for (let n = rng.range(1, 4), i = 0; i < n; i++) chars[rng.int(64)] = rng.pick([..."ghijklmnopqrstuvwxyzGXZ-._~!$&'()*+,;=:@"]);
      return get(category, hashRoute(segment(chars.join(""))), "error");
    }
    if (kind === 2) {
      const chars = [...hex];
      for (let n = rng.range(1, 8), i = 0; i < n; i++) chars[rng.int(64)] = rng.pick(UNICODE_DIGITS);
      return get(category, hashRoute(segment(chars.join(""))), "error", { codes: ["INVALID_HASH"] });
    }
    if (kind === 3) {
      const variant = rng.pick([
        `SHA256:${hex}`,
        `sha256:${hex.slice(1)}`,
        `sha256::${hex}`,
        `sha256${hex}`,
        `sha-256:${hex}`,
        `sha256: ${hex}`,
        ` sha256:${hex}`,
        `sha256:sha256:${hex}`,
        `sha512:${rng.hex(128)}`,
        `md5:${rng.hex(32)}`,
        `Sha256:${hex}`,
        `sha256:${hex}0`,
        `sha256:${hex} `,
        `0x${hex}`,
      ]);
      return get(category, hashRoute(segment(variant)), "error");
    }
    if (kind === 4) {
      // A well-formed unknown hash, also percent-encoded and prefixed: not found.
      const hash = rng.pick([validHash(), `sha256:${validHash()}`, `sha256%3A${validHash()}`, `sha256%3a${hex}`]);
      return get(category, hashRoute(hash), "error", { codes: ["NOT_FOUND"] });
    }
    if (kind === 5) {
      const at = rng.int(64);
      const garbage = rng.pick(PERCENT_GARBAGE);
      return get(category, hashRoute(rng.chance(0.5) ? garbage : `${hex.slice(0, at)}${garbage}${hex.slice(at)}`), "error", {
        fresh: true,
      });
    }
    if (kind === 6) {
      // Longer than the schema's 200, longer than the router's 256, and longer than Node's header limit.
      const length = rng.pick([rng.range(201, 256), rng.range(257, 4000), rng.range(HEADER_LIMIT + 1, 40_000)]);
      return get(category, hashRoute(rng.hex(length)), "error", {
        fresh: true,
        codes: ["VALIDATION_ERROR", "PAYLOAD_TOO_LARGE"],
      });
    }
    if (kind === 7) {
      const empty = rng.pick([EMPTY_HASH, EMPTY_HASH.toUpperCase(), `sha256:${EMPTY_HASH}`]);
      return get(category, hashRoute(empty), "error", { codes: ["EMPTY_FILE"] });
    }
    if (kind === 8) {
      // A bad hash in a protect body.
      const bad = rng.pick([
        rng.hex(63),
        `${rng.hex(63)}g`,
        `sha256:${rng.hex(65)}`,
        "",
        " ",
        EMPTY_HASH,
        `SHA256:${hex}`,
        "\u0663".repeat(64),
      ]);
      return post(category, PROTECT, json({ contentHash: bad }), "error", { codes: ["INVALID_HASH", "EMPTY_FILE"] });
    }
    if (kind === 9) {
      const absent = rng.pick(["maybe", "1x", "", "TRUE%20", "%00", "yes", "true&absent=false"]);
      return get(category, `/api/v1/proof/${rng.chance(0.5) ? hex : "xyz"}?absent=${absent}`, "error");
    }
    // Proof of absence of an unknown hash is a success (a non-existence proof).
    return rng.chance(0.15)
      ? get(category, `/api/v1/proof/${validHash()}?absent=true`, "success")
      : get(category, `/api/v1/proof/${segment(`${hex}\u0000`)}?absent=true`, "error", { codes: ["INVALID_HASH"] });
  });

  // 6. Odd Unicode: valid texts register; lone surrogates and blank texts are refused.
  add("odd-unicode", 1300, (category) => {
    switch (rng.int(8)) {
      case 0:
      case 1:
        return post(category, PROTECT, json({ content: oddText(category) }), "success");
      case 2:
        return post(
          category,
          PROTECT,
          json({ content: unique(category), metadata: { title: oddText("title", ODD_STORABLE), author: rng.pick(ODD_STORABLE) } }),
          "success",
        );
      case 3:
        return post(category, "/api/v1/verify-content", json({ content: oddText(category) }), "any");
      case 4: {
        const lone = rng.pick(LONE_SURROGATES);
        const text = unique(category);
        return post(
          category,
          rng.pick([PROTECT, "/api/v1/verify-content"]),
          json({ content: rng.chance(0.5) ? `${text}${lone}` : `${lone}${text}` }),
          "error",
          { codes: ["VALIDATION_ERROR"] },
        );
      }
      case 5: {
        const lone = rng.pick(LONE_SURROGATES);
        const metadata = rng.pick([{ title: `t${lone}` }, { description: lone }, { [`key${lone}`]: 1 }, { extra: { nested: [lone] } }]);
        return post(category, PROTECT, json({ content: unique(category), metadata }), "error", { codes: ["VALIDATION_ERROR"] });
      }
      case 6: {
        let blank = "";
        for (let n = rng.range(0, 30), i = 0; i < n; i++) blank += rng.pick(BLANK);
        const markup = rng.pick(["", "<p></p>", "<br>", "<script>x</script>", "<p><!-- c --></p>", "<div> </div>"]);
        return post(category, rng.pick([PROTECT, "/api/v1/verify-content"]), json({ content: `${blank}${markup}${blank}` }), "error", {
          codes: ["NO_TEXT_CONTENT"],
        });
      }
      default: {
        // NUL in stored fields: text columns and jsonb cannot hold it.
        const nul = rng.pick([
          { metadata: { title: "a\u0000b" } },
          { metadata: { "k\u0000": "v" } },
          { licensing_email: "a\u0000@b.co" },
          { licensing_uri: "https://a.example/\u0000" },
        ]);
        return post(category, PROTECT, json({ content: unique(category), ...nul }), "error", { codes: ["VALIDATION_ERROR"] });
      }
    }
  });

  // 7. Metadata: over 16 KiB, overlong fields, bad fingerprints, too deep — and, near the limits, valid.
  add("metadata", 500, (category) => {
    const content = unique(category);
    const over = (limit: number) => "m".repeat(limit + rng.range(1, 3 * limit));
    switch (rng.int(6)) {
      case 0:
        return post(category, PROTECT, json({ content, metadata: { note: "n".repeat(16 * 1024 + rng.range(1, 40_000)) } }), "error", {
          codes: ["VALIDATION_ERROR"],
        });
      case 1: {
        const metadata: Record<string, string> = {};
        for (let i = 0; i < rng.range(700, 2000); i++) metadata[`k${i}`] = rng.text(20);
        return post(category, PROTECT, json({ content, metadata }), "error", { codes: ["VALIDATION_ERROR"] });
      }
      case 2: {
        const [field, limit] = rng.pick([
          ["title", 500],
          ["description", 5000],
          ["author", 200],
          ["type", 50],
        ] as const);
        return post(category, PROTECT, json({ content, metadata: { [field]: over(limit) } }), "error", { codes: ["VALIDATION_ERROR"] });
      }
      case 3: {
        const fingerprint = rng.pick(["f".repeat(257), "caf\u00e9", "tab\there", "nl\n", "\u{1f600}", "\u0000", "x".repeat(5000)]);
        return post(category, PROTECT, json({ content, metadata: { fingerprint } }), "error", { codes: ["VALIDATION_ERROR"] });
      }
      case 4: {
        let deep: unknown = "leaf";
        for (let i = 0; i < rng.range(33, 400); i++) deep = rng.chance(0.5) ? [deep] : { d: deep };
        return post(category, PROTECT, json({ content, metadata: { deep } }), "error", { codes: ["VALIDATION_ERROR"] });
      }
      default: {
        // At the limits: still valid.
        let deep: unknown = "leaf";
        for (let i = 0; i < 20; i++) deep = { d: deep };
        const metadata = rng.pick([
          { title: "t".repeat(500), description: "d".repeat(5000), author: "a".repeat(200), type: "y".repeat(50) },
          { fingerprint: "~".repeat(256), extra: { deep } },
          { title: null, description: null, author: null, type: null, fingerprint: null },
          { note: "n".repeat(15 * 1024) },
        ]);
        return post(category, PROTECT, json({ content, metadata }), "success");
      }
    }
  });

  // 8. Bad licences, policies, e-mails and URIs; contact_required without a contact.
  add("bad-fields", 1000, (category) => {
    const content = unique(category);
    switch (rng.int(5)) {
      case 0:
        return post(category, PROTECT, json({ content, license: rng.pick(BAD_LICENCES) }), "error", { codes: ["VALIDATION_ERROR"] });
      case 1:
        return post(category, PROTECT, json({ content, ai_training_policy: rng.pick(BAD_POLICIES) }), "error", {
          codes: ["VALIDATION_ERROR"],
        });
      case 2:
        return post(category, PROTECT, json({ content, licensing_email: rng.pick(BAD_EMAILS) }), "error", { codes: ["VALIDATION_ERROR"] });
      case 3:
        return post(category, PROTECT, json({ content, licensing_uri: rng.pick(BAD_URIS) }), "error", { codes: ["VALIDATION_ERROR"] });
      default: {
        const policy = rng.pick(["contact_required", "Contact-Required", "CONTACT_REQUIRED", "contact-required"]);
        const contact = rng.pick([{}, { licensing_email: null }, { licensing_uri: null }, { licensing_email: null, licensing_uri: null }]);
        return post(category, PROTECT, json({ content, ai_training_policy: policy, ...contact }), "error", { codes: ["VALIDATION_ERROR"] });
      }
    }
  });

  // 9. Header abuse, each on a base request whose answer is known.
  const bases: (() => Hostile)[] = [
    () => get("header-abuse", "/api/v1/stats", "success"),
    () => get("header-abuse", "/health", "success"),
    () => get("header-abuse", `/api/v1/verify/${rng.hex(rng.range(1, 63))}`, "error"),
    () => get("header-abuse", `/api/v1/content/${rng.hex(64)}/history`, "error"),
    () => post("header-abuse", PROTECT, json({ content: unique("header-abuse") }), "success"),
    () => post("header-abuse", PROTECT, '{"content":', "error"),
  ];
  add("header-abuse", 1200, () => {
    const base = rng.pick(bases)();
    const headers: OutgoingHttpHeaders = { ...base.headers };
    const isPost = base.method === "POST";
    switch (rng.int(12)) {
      case 0:
        headers["x-request-id"] = rng.text(rng.range(1, 128), `${ALPHA}0123456789._:-`);
        break;
      case 1:
        headers["x-request-id"] = rng.pick([
          "has space",
          "<script>",
          "a/b",
          "caf\u00e9",
          "x".repeat(129),
          "y".repeat(10_000),
          "",
          "a\tb",
          "id;drop",
          "../../",
          "%00",
          "a,b",
          "{}",
        ]);
        break;
      case 2:
        headers["x-request-id"] = [rng.text(8), rng.text(8)];
        break;
      case 3:
        headers["x-forwarded-for"] = rng.chance(0.9)
          ? rng.pick(XFF_GARBAGE)
          : Array.from({ length: 700 }, () => rng.pick(XFF_GARBAGE)).join(", ");
        break;
      case 4:
        // An invalid credential is not yet refused on content endpoints ([P] work): the base answer, or 401.
        headers.authorization = rng.pick(AUTH_GARBAGE);
        return { ...base, headers, expect: base.expect === "error" ? "error" : "any" };
      case 5:
        // Big headers under Node's 16 KiB limit: the base answer.
        headers["x-pad"] = rng.text(rng.range(8000, 12_000));
        headers.cookie = `session=${rng.text(rng.range(1000, 3000))}`;
        break;
      case 6:
        headers["x-pad"] = rng.text(rng.range(HEADER_LIMIT + 1, 60_000));
        return { ...base, headers, expect: "error", codes: ["PAYLOAD_TOO_LARGE"], fresh: true };
      case 7:
        for (let i = 0; i < rng.range(100, 600); i++) headers[`x-h${i}`] = rng.text(rng.range(1, 8));
        break;
      case 8:
        if (!isPost) {
          headers.accept = rng.pick(["application/xml", "text/html", "*/*;q=x", "", "\u00ff"]);
          break;
        }
        headers["content-type"] = rng.pick(BAD_CONTENT_TYPES);
        return { ...base, headers, expect: "error", codes: ["UNSUPPORTED_MEDIA_TYPE"] };
      case 9:
        if (isPost) headers["content-type"] = rng.pick(JSON_CHARSETS);
        else headers["accept-encoding"] = rng.pick(["gzip;q=xyz", "br, br, br", "identity;q=0, *;q=0", "x".repeat(2000)]);
        break;
      case 10:
        if (isPost) headers["content-type"] = ["application/json", rng.pick(["text/plain", "application/xml", "application/json"])];
        else headers["if-none-match"] = rng.pick(['"x"', "*", "W/garbage", "\u00ff"]);
        break;
      default:
        headers[rng.pick(["origin", "host", "range", "x-http-method-override", "x-daon-load-test", "forwarded", "te", "via"])] = rng.pick([
          "null",
          "evil.example",
          "bytes=0-0,-1",
          "DELETE",
          rng.text(300),
          "for=garbage;proto=gopher",
          "trailers",
          "",
        ]);
    }
    return { ...base, headers };
  });

  // 10. Unsupported methods and media types.
  const anyRoute = () =>
    rng.pick(["/api/v1/protect", "/api/v1/verify-content", `/api/v1/verify/${rng.hex(64)}`, "/api/v1/stats", "/health", "/api/v1/nope"]);
  add("methods-and-media", 700, (category) => {
    switch (rng.int(7)) {
      case 0:
      case 1:
        return {
          category,
          method: rng.pick(ODD_METHODS),
          path: anyRoute(),
          headers: JSON_TYPE,
          body: json({ content: "x" }),
          expect: "error",
          codes: ["NOT_FOUND"],
        };
      case 2:
        return { category, method: rng.pick(UNKNOWN_METHODS), path: anyRoute(), expect: "error", codes: ["VALIDATION_ERROR"], fresh: true };
      case 3:
        return { category, method: "HEAD", path: anyRoute(), expect: "any" };
      case 4:
        return rng.chance(0.5)
          ? { category, method: "OPTIONS", path: anyRoute(), expect: "error", codes: ["NOT_FOUND"] }
          : {
              category,
              method: "OPTIONS",
              path: anyRoute(),
              headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
              expect: "any",
            };
      case 5:
        return post(category, rng.pick(["/api/v1/protect", "/api/v1/verify-content"]), json({ content: "x" }), "error", {
          headers: { "content-type": rng.pick(BAD_CONTENT_TYPES) },
          codes: ["UNSUPPORTED_MEDIA_TYPE"],
        });
      default:
        // A body on a GET: ignored.
        return {
          category,
          method: "GET",
          path: rng.pick(["/api/v1/stats", "/health", "/api/v1"]),
          headers: { "content-type": rng.pick(["text/plain", "application/json", "application/xml"]) },
          body: Buffer.from(rng.text(rng.range(1, 2000))),
          expect: "success",
        };
    }
  });

  // 11. Unknown routes, with and without bodies.
  add("unknown-route", 600, (category) => {
    const path = rng.chance(0.8) ? rng.pick(UNKNOWN_ROUTES) : `/api/v1/${segment(rng.text(rng.range(1, 60), `${ALPHA}._~-\u00e9\u00fc`))}`;
    const fresh = path.includes("%") || /[^\x21-\x7e]/.test(path);
    return rng.chance(0.7)
      ? get(category, path, "error", { fresh })
      : post(category, path, json({ content: unique(category) }), "error", { fresh });
  });

  // 12. ?wait= garbage on protect.
  // As they go on the wire: percent-encoded where needed.
  const BAD_WAITS = [
    "",
    "abc",
    "-1",
    "31",
    "30.5",
    "1e3",
    "Infinity",
    "NaN",
    "0x10",
    "true%20",
    "TRUE",
    "False",
    "%00",
    "%201",
    "%EF%BC%91",
    "1.",
    ".5",
    "99999999",
    "1,2",
    "0b1",
    "1&wait=2",
    "%zz",
    "10000000000",
  ];
  const GOOD_WAITS = ["false", "false", "false", "0", "0", "0.25", "1", "2", "3"];
  add("wait", 400, (category) => {
    const good = rng.chance(0.25);
    const wait = good ? rng.pick(GOOD_WAITS) : rng.pick(BAD_WAITS);
    const validBody = rng.chance(0.7);
    const body = validBody ? json({ content: unique(category) }) : json({ content: unique(category), license: "nope" });
    return post(category, `/api/v1/protect?wait=${wait}`, body, good && validBody ? "success" : "error", {
      codes: ["VALIDATION_ERROR"],
    });
  });

  // 13. Files: octet-stream with its fields as query parameters.
  add("octet-stream", 400, (category) => {
    const bytes = () => Buffer.concat([Buffer.from(unique(category)), rng.bytes(rng.range(0, 4096))]);
    const octet = (path: string, body: Buffer, expect: Expect, extra: Partial<Hostile> = {}) =>
      post(category, path, body, expect, { headers: OCTET_TYPE, ...extra });
    switch (rng.int(6)) {
      case 0:
        return octet(
          `${PROTECT}&title=${encodeURIComponent(oddText("t", ODD_STORABLE))}&license=cc-by&ai_training_policy=open&unknown=1`,
          bytes(),
          "success",
        );
      case 1:
        return octet(rng.pick([PROTECT, "/api/v1/verify-content"]), Buffer.alloc(0), "error", { codes: ["EMPTY_FILE"] });
      case 2: {
        const query = rng.pick([
          `title=${"t".repeat(501)}`,
          `description=${"d".repeat(5001)}`,
          `type=${"y".repeat(51)}`,
          "title=a%00b",
          "license=nope",
          "ai_training_policy=maybe",
          "licensing_email=not-an-email",
          "licensing_uri=ftp%3A%2F%2Fx",
          "ai_training_policy=contact_required",
          "title=a&title=b",
          "license=cc0&license=cc-by",
          "wait=soon",
        ]);
        return octet(`${PROTECT}&${query}`, bytes(), "error", { codes: ["VALIDATION_ERROR"] });
      }
      case 3:
        return octet("/api/v1/verify-content", bytes(), "error", { codes: ["NOT_FOUND"] });
      case 4:
        // Bytes sent chunked, JSON-looking bytes as a file: both still files.
        return rng.chance(0.5)
          ? octet(PROTECT, bytes(), "success", { chunked: true })
          : octet(PROTECT, json({ content: unique(category) }), "success");
      default:
        return octet(`${PROTECT}&title=${rng.pick(PERCENT_GARBAGE)}`, bytes(), "any", { fresh: true });
    }
  });

  // 14. Read endpoints with garbage query strings: still answered.
  add("read-endpoints", 300, (category) => {
    const path = rng.pick(["/api/v1/stats", "/health", "/api/v1/health", "/api/v1"]);
    const query = rng.pick([
      "?x=%zz",
      "?a=%",
      `?${"q".repeat(rng.range(100, 8000))}`,
      "?a=1&a=2&a[]=3",
      "?__proto__[x]=1",
      "?constructor[prototype][x]=1",
      "?limit=-1&cursor=%00",
      "?limit=1e9",
      `?${rng.text(20)}=${segment(rng.pick(ODD))}`,
      "?&&&==&",
      "?%F0%9F%98%80=%F0%9F%98%80",
    ]);
    return get(category, `${path}${query}`, "success");
  });

  return { requests: rng.shuffle(requests), raw: rawRequests(rng) };
}

/** Malformed HTTP: framing, header syntax, request lines, Content-Length lies. */
function rawRequests(rng: Rng): RawHostile[] {
  const xff = `X-Forwarded-For: ${CLIENT_IP}\r\n`;
  const protect = (headers: string, body: string) =>
    `POST /api/v1/protect?wait=false HTTP/1.1\r\nHost: api\r\n${xff}Content-Type: application/json\r\n${headers}\r\n${body}`;
  const body = () => `{"content":"raw ${rng.text(16)}"}`;
  const error = (text: string | Buffer, codes?: readonly string[]): RawHostile => ({
    category: "raw-http",
    bytes: typeof text === "string" ? Buffer.from(text, "latin1") : text,
    expect: "error",
    codes,
  });
  const makers: (() => RawHostile)[] = [
    () =>
      error(
        protect(`Content-Length: ${rng.pick(["abc", "-1", "1e3", "0x10", "5, 5", "99999999999999999999999", "+5", "5 5"])}\r\n`, body()),
      ),
    () => error(protect("Content-Length: 2\r\nContent-Length: 3\r\n", "{}")),
    () => error(protect("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n")),
    () => {
      // Content-Length shorter than the body: the rest is not a request.
      const b = body();
      return error(protect(`Content-Length: ${rng.range(1, b.length - 1)}\r\nConnection: close\r\n`, b));
    },
    () => {
      // Content-Length longer than the body: the client stops sending (and closes its side).
      const b = body();
      return { ...error(protect(`Content-Length: ${b.length + rng.range(1, 1000)}\r\n`, b)), endAfterIdle: true };
    },
    () =>
      error(
        protect(
          "Transfer-Encoding: chunked\r\n",
          rng.pick([
            "zz\r\n{}\r\n0\r\n\r\n",
            "ffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
            "-2\r\n{}\r\n0\r\n\r\n",
            "2\r\n{}0\r\n\r\n",
            "2;\u0000\r\n{}\r\n0\r\n\r\n",
          ]),
        ),
      ),
    () =>
      error(
        protect(
          `Transfer-Encoding: ${rng.pick(["gzip", "chunked, gzip", "identity", "chunked\r\nTransfer-Encoding: chunked"])}\r\n`,
          "2\r\n{}\r\n0\r\n\r\n",
        ),
      ),
    () =>
      error(
        `GET /api/v1/stats HTTP/1.1\r\nHost: api\r\n${xff}${rng.pick(["Bad Header: x", "X\u0000Y: z", "(): x", "X-A: a\u0000b", "X-B: a\rb", "NoColon", ": empty-name", "X-Folded: a\r\n b"])}\r\nConnection: close\r\n\r\n`,
      ),
    () => error(`GET /api/v1/stats HTTP/1.1\r\nHost: api\r\nX-Request-Id: caf\u00e9\u0001\r\n\r\n`),
    () => ({
      category: "raw-http",
      bytes: Buffer.from(
        `GET /api/v1/stats HTTP/1.1\r\nHost: api\r\n${xff}X-Request-Id: caf\u00e9\u00ff\r\nConnection: close\r\n\r\n`,
        "latin1",
      ),
      expect: "success",
    }),
    () => error(`GET /api/v1/stats HTTP/1.1\r\n${xff}Connection: close\r\n\r\n`, ["VALIDATION_ERROR"]),
    () => ({ category: "raw-http", bytes: Buffer.from(`GET /api/v1/stats HTTP/1.0\r\n${xff}\r\n`), expect: "success" }),
    () =>
      error(
        `${rng.pick([
          "GET /api/v1/stats HTTP/9.9",
          "GET /api/v1/stats HTTP/1",
          "/api/v1/stats",
          "GET",
          "GET /a b HTTP/1.1",
          "GETT /api/v1/stats HTTP/1.1",
          "get /api/v1/stats HTTP/1.1",
          "GET /api/v1/stats HTTP/1.1 extra",
        ])}\r\nHost: api\r\n${xff}\r\n`,
      ),
    () => ({
      category: "raw-http",
      bytes: Buffer.from(`GET http://evil.example/api/v1/stats HTTP/1.1\r\nHost: api\r\n${xff}Connection: close\r\n\r\n`),
      expect: "success",
    }),
    () => error(`GET * HTTP/1.1\r\nHost: api\r\n${xff}Connection: close\r\n\r\n`, ["NOT_FOUND"]),
    () => error(`GET /api/v1/stats HTTP/1.1\nHost: api\n${xff.trim()}\nConnection: close\n\n`),
    () =>
      error(`GET /api/v1/stats HTTP/1.1\r\nHost: api\r\nX-Pad: ${"p".repeat(rng.range(HEADER_LIMIT, 40_000))}\r\n\r\n`, [
        "PAYLOAD_TOO_LARGE",
      ]),
    () =>
      error(
        Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), rng.bytes(rng.range(10, 200))]),
      ),
    () => ({
      category: "raw-http",
      bytes: Buffer.from("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"),
      expect: "closed",
    }),
    () =>
      error(protect(`Expect: ${rng.pick(["bogus", "200-ok", "100-continue, x"])}\r\nContent-Length: 2\r\nConnection: close\r\n`, "{}"), [
        "VALIDATION_ERROR",
      ]),
    () => {
      const b = body();
      return {
        category: "raw-http",
        bytes: Buffer.from(protect(`Expect: 100-continue\r\nContent-Length: ${b.length}\r\nConnection: close\r\n`, b)),
        expect: "success",
      };
    },
    () => ({
      // Two requests in one write: the first is answered.
      category: "raw-http",
      bytes: Buffer.from(
        `GET /api/v1/stats HTTP/1.1\r\nHost: api\r\n${xff}\r\nGET /api/v1/verify/zz HTTP/1.1\r\nHost: api\r\n${xff}Connection: close\r\n\r\n`,
      ),
      expect: "success",
    }),
    () => error(Buffer.concat([rng.bytes(rng.range(1, 300)), Buffer.from("\r\n\r\n")])),
  ];
  return Array.from({ length: 230 }, () => rng.pick(makers)());
}

// ---------------------------------------------------------------------------------------------
// Judging the answers

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

/** What must never appear in an error body: stack frames, file paths, SQL and database errors, hosts. */
function leakPatterns(system: TestSystem): RegExp[] {
  const literal = (text: string) => new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const hosts = [new URL(POSTGRES_ADMIN_URL).host, new URL(REDIS_URL).host, new URL(system.rpcUrl).host];
  if (system.databaseUrl) hosts.push(new URL(system.databaseUrl).pathname.slice(1));
  return [
    /\n\s+at /,
    /\bat (?:async )?[\w$.<>[\]]+ \((?:file:|node:|\/)/,
    /file:\/\/|node:internal/,
    /\.(?:ts|js|mjs|cjs):\d+(?::\d+)?/,
    /node_modules/,
    literal(process.cwd()),
    literal(system.dir),
    /syntax error at or near|violates (?:unique|not-null|check|foreign key)|duplicate key value|relation "|column "|invalid input syntax|unsupported Unicode escape|invalid byte sequence|stack depth limit/i,
    /\binsert into "|\bselect .{0,200} from "|\bupdate "\w+" set\b/i,
    /ECONNREFUSED|ETIMEDOUT|EPIPE/,
    ...hosts.map(literal),
    ...(hostname().length >= 4 ? [new RegExp(`\\b${hostname().replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\\b`)] : []),
  ];
}

const isHealthPath = (path: string) => /^\/(?:api\/v1\/)?health(?:\?|$)/.test(path);

/** Why an answer is not acceptable for this request, or undefined when it is. */
function judge(
  request: { method: string; path: string; headers?: OutgoingHttpHeaders; expect: Expect | "closed"; codes?: readonly string[] },
  answer: Answer,
  leaks: RegExp[],
): string | undefined {
  const { status, headers, text } = answer;
  if (status >= 500) return `HTTP ${status}: ${text.slice(0, 200)}`;
  if (request.method === "HEAD") return text === "" ? undefined : "HEAD answered with a body";
  if (request.method === "OPTIONS" && status === 204) return text === "" ? undefined : "preflight answered with a body";
  let body: { success?: unknown; status?: unknown; error?: Record<string, unknown> };
  try {
    body = JSON.parse(text);
  } catch {
    return `HTTP ${status} with a body that is not JSON: ${JSON.stringify(text.slice(0, 120))}`;
  }
  if (typeof body !== "object" || body === null) return `HTTP ${status} with JSON that is no object: ${text.slice(0, 120)}`;
  if (!/^application\/json/.test(String(headers["content-type"]))) return `content-type ${headers["content-type"]}`;

  const healthy = isHealthPath(request.path) && status === 200 && (body.status === "healthy" || body.status === "degraded");
  if (body.success === true || healthy) {
    if (request.expect === "error") return `HTTP ${status} accepted what should be refused: ${text.slice(0, 160)}`;
    return status >= 200 && status < 300 ? undefined : `success body with HTTP ${status}`;
  }

  // The error envelope.
  if (body.success !== false) return `neither success nor error envelope: ${text.slice(0, 160)}`;
  const error = body.error;
  if (typeof error !== "object" || error === null) return "success: false without an error object";
  const { code, message, requestId, details } = error as { code?: unknown; message?: unknown; requestId?: unknown; details?: unknown };
  if (typeof code !== "string" || !(code in STATUS_OF)) return `undocumented error code ${JSON.stringify(code)} (HTTP ${status})`;
  if (!STATUS_OF[code].includes(status)) return `${code} with HTTP ${status}`;
  if (typeof message !== "string" || message === "") return `${code} without a message`;
  if (typeof requestId !== "string" || requestId === "") return `${code} without a requestId`;
  if (headers["x-request-id"] !== undefined && headers["x-request-id"] !== requestId)
    return "X-Request-Id header differs from error.requestId";
  const given = request.headers?.["x-request-id"];
  if (typeof given === "string" && REQUEST_ID.test(given) !== (requestId === given))
    return `requestId ${JSON.stringify(requestId.slice(0, 40))} for X-Request-Id ${JSON.stringify(given.slice(0, 40))}`;
  if (code === "VALIDATION_ERROR") {
    const fields = (details as { fields?: unknown })?.fields;
    if (
      !Array.isArray(fields) ||
      fields.length === 0 ||
      !fields.every((f) => typeof f?.field === "string" && typeof f?.message === "string")
    )
      return `VALIDATION_ERROR without details.fields: ${text.slice(0, 200)}`;
  }
  if (code === "PAYLOAD_TOO_LARGE" && typeof (details as { limit?: unknown })?.limit !== "number")
    return "PAYLOAD_TOO_LARGE without details.limit";
  if (code === "RATE_LIMITED" && !headers["retry-after"]) return "RATE_LIMITED without Retry-After";
  for (const leak of leaks) if (leak.test(text)) return `the error body leaks ${leak}: ${text.slice(0, 300)}`;
  if (request.expect === "success") return `refused what is valid: HTTP ${status} ${text.slice(0, 200)}`;
  if (request.codes && !request.codes.includes(code)) return `${code} where ${request.codes.join("/")} was expected: ${text.slice(0, 200)}`;
  return undefined;
}

/** A short name for an answer, for the summary: `201`, `400 MALFORMED_JSON`. */
function outcome(answer: Answer): string {
  try {
    const code = JSON.parse(answer.text)?.error?.code;
    return code ? `${answer.status} ${code}` : String(answer.status);
  } catch {
    return String(answer.status);
  }
}

// ---------------------------------------------------------------------------------------------
// Sending

/** Streams a huge body from one shared buffer; stops writing once the server has answered. */
const HUGE = Buffer.alloc(MiB, 0x61);
function* hugeBody(prefix: Buffer, size: number, suffix: Buffer) {
  yield prefix;
  for (let sent = 0; sent < size; sent += HUGE.length) yield HUGE.subarray(0, Math.min(HUGE.length, size - sent));
  yield suffix;
}

function exchange(port: number, agent: Agent, hostile: Hostile): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error: Error | undefined, answer?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(answer!);
    };
    const headers: OutgoingHttpHeaders = { "x-forwarded-for": CLIENT_IP, ...hostile.headers };
    const body = hostile.body ?? Buffer.alloc(0);
    if (!hostile.chunked && (hostile.body || hostile.size))
      headers["content-length"] = body.length + (hostile.size ?? 0) + (hostile.suffix?.length ?? 0);
    const source = hostile.size ? Readable.from(hugeBody(body, hostile.size, hostile.suffix ?? Buffer.alloc(0))) : undefined;
    const req = request(
      {
        host: "127.0.0.1",
        port,
        method: hostile.method,
        path: hostile.path,
        headers,
        agent: hostile.fresh || hostile.size ? false : agent,
      },
      (res) => {
        if (source) {
          source.unpipe(req);
          source.destroy();
        }
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          finish(undefined, { status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") });
          if (source) req.destroy();
        });
        res.on("error", (error) => finish(error));
      },
    );
    const timer = setTimeout(() => {
      finish(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms (hang)`));
      req.destroy();
    }, REQUEST_TIMEOUT_MS);
    req.on("error", (error) => finish(error));
    if (source) source.pipe(req);
    else if (hostile.chunked && body.length > 1) {
      req.write(body.subarray(0, body.length >> 1));
      req.end(body.subarray(body.length >> 1));
    } else req.end(hostile.body);
  });
}

/** The first final response in `data`, once it is complete. */
function parseResponse(data: Buffer): Answer | undefined {
  let at = 0;
  for (;;) {
    const headEnd = data.indexOf("\r\n\r\n", at);
    if (headEnd === -1) return undefined;
    const [statusLine, ...lines] = data.subarray(at, headEnd).toString("latin1").split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
    const headers: IncomingHttpHeaders = {};
    for (const line of lines) {
      const colon = line.indexOf(":");
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const start = headEnd + 4;
    if (status >= 100 && status < 200) {
      at = start;
      continue;
    }
    if (headers["content-length"] !== undefined) {
      const end = start + Number(headers["content-length"]);
      return data.length < end ? undefined : { status, headers, text: data.subarray(start, end).toString("utf8") };
    }
    if (/chunked/i.test(String(headers["transfer-encoding"]))) {
      const parts: Buffer[] = [];
      let pos = start;
      for (;;) {
        const lineEnd = data.indexOf("\r\n", pos);
        if (lineEnd === -1) return undefined;
        const size = Number.parseInt(data.subarray(pos, lineEnd).toString("latin1"), 16);
        if (size === 0) return { status, headers, text: Buffer.concat(parts).toString("utf8") };
        if (data.length < lineEnd + 2 + size) return undefined;
        parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size));
        pos = lineEnd + 2 + size + 2;
      }
    }
    return { status, headers, text: data.subarray(start).toString("utf8") };
  }
}

/** Writes the bytes (closing this side after a pause if asked) and reads the first answer. */
function rawExchange(port: number, bytes: Buffer, endAfterIdle = false): Promise<Answer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error: Error | undefined, answer?: Answer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(idle);
      socket.destroy();
      if (error) reject(error);
      else resolve(answer);
    };
    const socket = connect(port, "127.0.0.1", () => socket.write(bytes));
    const idle = setTimeout(() => endAfterIdle && socket.end(), 1500);
    const timer = setTimeout(
      () => finish(new Error(`raw request: no answer or close within ${REQUEST_TIMEOUT_MS} ms (hang)`)),
      REQUEST_TIMEOUT_MS,
    );
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      const answer = parseResponse(Buffer.concat(chunks));
      if (answer) finish(undefined, answer);
    });
    socket.on("close", () => {
      const data = Buffer.concat(chunks);
      const answer = parseResponse(data);
      finish(undefined, answer ?? (data.length > 0 ? { status: 0, headers: {}, text: data.toString("latin1") } : undefined));
    });
    socket.on("error", (error: Error & { code?: string }) => {
      // A reset after the answer arrived still counts as answered.
      const answer = parseResponse(Buffer.concat(chunks));
      if (answer || error.code === "ECONNRESET") finish(undefined, answer);
      else finish(error);
    });
  });
}

interface Tally {
  sent: number;
  ms: number;
  outcomes: Record<string, number>;
}

/** Sends everything with bounded concurrency; collects problems and a per-category tally. */
async function flood(system: TestSystem, requests: Hostile[], raw: RawHostile[]) {
  const port = Number(new URL(system.apiUrl).port);
  const leaks = leakPatterns(system);
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const problems: string[] = [];
  const tally: Record<string, Tally> = {};
  let answered = 0;
  const note = (category: string, key: string, since: number) => {
    tally[category] ??= { sent: 0, ms: 0, outcomes: {} };
    tally[category].sent++;
    tally[category].ms += Date.now() - since;
    tally[category].outcomes[key] = (tally[category].outcomes[key] ?? 0) + 1;
  };
  const describeRequest = (h: Hostile) =>
    `${h.category} ${h.method} ${h.path.slice(0, 100)} ${JSON.stringify(h.headers ?? {}).slice(0, 120)} ${h.body?.subarray(0, 100).toString() ?? ""}`;

  let next = 0;
  const worker = async () => {
    while (next < requests.length) {
      const hostile = requests[next++];
      const since = Date.now();
      try {
        const answer = await exchange(port, agent, hostile);
        answered++;
        note(hostile.category, outcome(answer), since);
        const problem = judge(hostile, answer, leaks);
        if (problem) problems.push(`${describeRequest(hostile)}: ${problem}`);
      } catch (error) {
        note(hostile.category, "failed", since);
        problems.push(`${describeRequest(hostile)}: ${(error as Error & { code?: string }).code ?? ""} ${(error as Error).message}`);
      }
    }
  };
  let nextRaw = 0;
  const rawWorker = async () => {
    while (nextRaw < raw.length) {
      const hostile = raw[nextRaw++];
      const shown = JSON.stringify(hostile.bytes.subarray(0, 90).toString("latin1"));
      const since = Date.now();
      try {
        const answer = await rawExchange(port, hostile.bytes, hostile.endAfterIdle);
        answered++;
        note("raw-http", answer ? outcome(answer) : "closed", since);
        if (!answer) {
          if (hostile.expect !== "closed") problems.push(`raw-http ${shown}: closed without an answer`);
          continue;
        }
        const expect = hostile.expect === "closed" ? "error" : hostile.expect;
        const problem = judge({ method: "RAW", path: "", expect, codes: hostile.codes }, answer, leaks);
        if (problem) problems.push(`raw-http ${shown}: ${problem}`);
      } catch (error) {
        note("raw-http", "failed", since);
        problems.push(`raw-http ${shown}: ${(error as Error).message}`);
      }
    }
  };
  await Promise.all([...Array.from({ length: CONCURRENCY }, worker), ...Array.from({ length: 4 }, rawWorker)]);
  agent.destroy();
  return { problems, tally, answered };
}

async function getJson(url: string, init: RequestInit = {}) {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown> };
}

// ---------------------------------------------------------------------------------------------

for (const storage of STORAGE_PATHS) {
  describe(`hostile input (${storage})`, () => {
    let system: TestSystem;
    before(async () => {
      system = await startTestSystem(storage, FLOOD_ENV);
    });
    after(() => system?.stop());

    test(`≥ ${MIN_REQUESTS} generated hostile requests each get the documented envelope (or, if valid, a success): zero 5xx, no crash, no hang`, async () => {
      const startedAt = Date.now();
      const { requests, raw } = generate(prng(SEED));
      const generatedMs = Date.now() - startedAt;
      const server = system.api.app.server;
      const urlBefore = system.api.url;
      const logsBefore = system.logs.length;

      const floodStart = Date.now();
      const { problems, tally, answered } = await flood(system, requests, raw);
      const floodMs = Date.now() - floodStart;

      const total = requests.length + raw.length;
      console.log(`hostile-input (${storage}): ${total} requests (generated in ${generatedMs} ms) answered in ${floodMs} ms`);
      for (const [category, { sent, ms, outcomes }] of Object.entries(tally).sort())
        console.log(`  ${category}: ${sent} (mean ${Math.round(ms / sent)} ms) ${JSON.stringify(outcomes)}`);
      assert.deepEqual(problems.slice(0, 25), [], `${problems.length} answers were not the documented envelope or success`);
      assert.equal(answered, total, "every request was answered");
      assert.ok(total >= MIN_REQUESTS, `${total} hostile requests sent`);

      // No request ended in an error log line (a 500's "request failed"), and the API is the same, still serving.
      const errorLogs = system.logs
        .slice(logsBefore)
        .map((line) => JSON.parse(line) as { level: number; reqId?: string; msg?: string; err?: { message?: string } })
        .filter((line) => line.level >= 50 && line.reqId !== undefined);
      assert.deepEqual(
        errorLogs.slice(0, 5).map((l) => `${l.reqId} ${l.msg} ${l.err?.message ?? ""}`),
        [],
        "requests that logged errors",
      );
      assert.equal(system.api.app.server, server);
      assert.ok(server.listening);
      assert.equal(system.api.url, urlBefore);

      const health = await getJson(`${system.apiUrl}/health`);
      assert.equal(health.status, 200);
      assert.ok(health.body.status === "healthy" || health.body.status === "degraded", String(health.body.status));
      const stats = await getJson(`${system.apiUrl}/api/v1/stats`, { headers: { "x-forwarded-for": CLIENT_IP } });
      assert.equal(stats.status, 200);
      const text = `after the hostile flood ${storage} ${runTag}`;
      const protect = await getJson(`${system.apiUrl}/api/v1/protect`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-forwarded-for": CLIENT_IP },
        body: JSON.stringify({ content: text, license: "cc-by", metadata: { title: "after" } }),
      });
      assert.equal(protect.status, 201, JSON.stringify(protect.body));
      assert.equal(protect.body.status, "confirmed");
      console.log(`hostile-input (${storage}): whole test ${Date.now() - startedAt} ms`);
    });
  });

  describe(`hostile input past the rate limits (${storage})`, () => {
    let system: TestSystem;
    before(async () => {
      system = await startTestSystem(storage, LIMITED_ENV);
    });
    after(() => system?.stop());

    test("hostile requests past the limits get 429 RATE_LIMITED with Retry-After; /health stays exempt", async () => {
      const rng = prng(SEED ^ 0x429);
      // A client of its own (Redis keeps counts between runs and tests for a minute; IPv6 counts per /64).
      const client = `198.19.${runTag}`;
      const global = Number(LIMITED_ENV.RATE_LIMIT_MAX);
      const perRoute = Number(LIMITED_ENV.PROTECT_RATE_LIMIT_MAX);
      const requests: (Hostile & { limit: "global" | "protect" | "verify-content" })[] = [];
      for (let i = 0; i < 120; i++) {
        const hash = rng.pick([rng.hex(rng.range(1, 63)), `sha256:${rng.hex(70)}`, `${rng.hex(63)}z`, rng.hex(64)]);
        requests.push({ ...get("rate-limited", `/api/v1/${rng.pick(["verify", "proof"])}/${hash}`, "error"), limit: "global" });
      }
      for (let i = 0; i < 30; i++)
        requests.push({
          ...post("rate-limited", PROTECT, rng.pick(['{"content":', "[]", '{"contentHash":"zz"}']), "error"),
          limit: "protect",
        });
      for (let i = 0; i < 30; i++)
        requests.push({
          ...post("rate-limited", "/api/v1/verify-content", rng.pick(["{", '{"content":5}', "null"]), "error"),
          limit: "verify-content",
        });
      rng.shuffle(requests);

      const port = Number(new URL(system.apiUrl).port);
      const agent = new Agent({ keepAlive: true, maxSockets: 4 });
      const leaks = leakPatterns(system);
      const problems: string[] = [];
      const limited: Record<string, number> = { global: 0, protect: 0, "verify-content": 0 };
      for (const hostile of requests) {
        const answer = await exchange(port, agent, { ...hostile, headers: { ...hostile.headers, "x-forwarded-for": client } });
        const problem = judge(hostile, answer, leaks);
        if (problem) problems.push(`${hostile.method} ${hostile.path}: ${problem}`);
        if (answer.status === 429) {
          limited[hostile.limit]++;
          const { error } = JSON.parse(answer.text);
          assert.equal(error.code, "RATE_LIMITED");
          assert.ok(Number(answer.headers["retry-after"]) > 0, "Retry-After");
          assert.ok(answer.headers["ratelimit-limit"] !== undefined, "RateLimit-Limit");
          assert.equal(answer.headers["ratelimit-remaining"], "0");
        }
      }
      agent.destroy();
      assert.deepEqual(problems.slice(0, 20), [], `${problems.length} answers were not the envelope`);
      const count = (limit: string) => requests.filter((r) => r.limit === limit).length;
      assert.deepEqual(limited, {
        global: count("global") - global,
        protect: count("protect") - perRoute,
        "verify-content": count("verify-content") - perRoute,
      });
      console.log(`hostile-input (${storage}) past the limits: ${requests.length} requests, 429s ${JSON.stringify(limited)}`);

      // Exempt and per client: /health still answers this client, another client is not limited.
      const health = await getJson(`${system.apiUrl}/health`, { headers: { "x-forwarded-for": client } });
      assert.equal(health.status, 200, "/health is exempt");
      const limitedAgain = await getJson(`${system.apiUrl}/api/v1/stats`, { headers: { "x-forwarded-for": client } });
      assert.equal(limitedAgain.status, 429, "this client is still limited");
      const other = await getJson(`${system.apiUrl}/api/v1/stats`, { headers: { "x-forwarded-for": `198.20.${runTag}` } });
      assert.equal(other.status, 200, "another client is not");
    });
  });
}
