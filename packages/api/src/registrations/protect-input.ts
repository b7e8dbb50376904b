import { ContentError, hashBytes, hashText, parseAiTrainingPolicy, parseContentHash, parseLicence } from "@daon/core";
import { ApiError, validationError } from "../http/errors.js";
import type { NewRegistration } from "./registration-store.js";

/** The fields a protect request may carry besides its content (JSON body, or query for files). */
export interface ProtectFields {
  metadata?: Record<string, unknown>;
  license?: string | null;
  ai_training_policy?: string;
  licensing_email?: string | null;
  licensing_uri?: string | null;
}

export type ProtectContent =
  | { kind: "text"; content: string }
  | { kind: "hash"; contentHash: string }
  | { kind: "file"; bytes: Uint8Array };

export interface Caller {
  platform: string;
  ownerId: string | null;
}

const METADATA_LIMIT = 16 * 1024;
/** Nesting PostgreSQL's jsonb takes without running out of stack (8,000 levels fit in 16 KiB and fail). */
const METADATA_DEPTH = 32;
const EMAIL = /^[^\s@]{1,64}@[^\s@]+\.[^\s@]+$/;
/** What PostgreSQL text and jsonb cannot hold: NUL, and unpaired surrogates (jsonb refuses their escapes). */
const UNSTORABLE = /[\0\p{Cs}]/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const TEXT_LIMITS: Record<string, number> = { title: 500, description: 5000, author: 200, type: 50 };

/** Hashes the content as api.md §2.1 says; content errors become the envelope's codes. */
export function contentHashOf(content: ProtectContent): string {
  try {
    if (content.kind === "text") return hashText(content.content);
    if (content.kind === "file") return hashBytes(content.bytes);
    return parseContentHash(content.contentHash);
  } catch (error) {
    if (error instanceof ContentError) {
      if (error.code === "VALIDATION_ERROR") throw validationError([{ field: "content", message: error.message }]);
      throw new ApiError(400, error.code, error.message);
    }
    throw error;
  }
}

/** Validates the fields, applies defaults, and hashes: what one registration will record. */
export function prepareRegistration(content: ProtectContent, fields: ProtectFields, caller: Caller): NewRegistration {
  const problems: { field: string; message: string }[] = [];
  const metadata = { ...(fields.metadata ?? {}) } as Record<string, unknown>;
  const unstorable = unstorableJson(metadata);
  if (unstorable) problems.push({ field: "metadata", message: unstorable });
  else if (JSON.stringify(metadata).length > METADATA_LIMIT)
    problems.push({ field: "metadata", message: `must be at most ${METADATA_LIMIT} bytes as JSON` });
  for (const [name, limit] of Object.entries(TEXT_LIMITS)) {
    const value = metadata[name];
    if (value === undefined || value === null) continue;
    if (typeof value !== "string") problems.push({ field: `metadata.${name}`, message: "must be a string" });
    else if (value.length > limit) problems.push({ field: `metadata.${name}`, message: `must be at most ${limit} characters` });
  }
  const fingerprint = metadata.fingerprint ?? "";
  if (typeof fingerprint !== "string" || fingerprint.length > 256 || !PRINTABLE_ASCII.test(fingerprint)) {
    problems.push({ field: "metadata.fingerprint", message: "must be printable ASCII, at most 256 characters" });
  }
  let license = "liberation_v1";
  if (fields.license !== undefined && fields.license !== null) {
    try {
      license = parseLicence(fields.license).api;
    } catch (error) {
      problems.push({ field: "license", message: (error as Error).message });
    }
  }
  let policy = "prohibited";
  if (fields.ai_training_policy !== undefined && fields.ai_training_policy !== null) {
    try {
      policy = parseAiTrainingPolicy(fields.ai_training_policy);
    } catch (error) {
      problems.push({ field: "ai_training_policy", message: (error as Error).message });
    }
  }
  const email = fields.licensing_email ?? null;
  if (email !== null && (email.length > 254 || !EMAIL.test(email) || UNSTORABLE.test(email)))
    problems.push({ field: "licensing_email", message: "must be an e-mail address" });
  const uri = fields.licensing_uri ?? null;
  if (uri !== null && (uri.length > 2048 || !isHttpUrl(uri) || UNSTORABLE.test(uri)))
    problems.push({ field: "licensing_uri", message: "must be an http(s) URL of at most 2048 characters" });
  if (policy === "contact_required" && email === null && uri === null) {
    problems.push({ field: "ai_training_policy", message: "contact_required needs licensing_email or licensing_uri" });
  }
  if (problems.length > 0) throw validationError(problems);

  const contentHash = contentHashOf(content);
  metadata.title ??= content.kind === "file" ? "Untitled File" : "Untitled Work";
  metadata.type ??= content.kind;
  metadata.description ??= null;
  metadata.author ??= null;
  return {
    contentHash,
    license,
    aiTrainingPolicy: policy,
    licensingEmail: email,
    licensingUri: uri,
    metadata,
    fingerprint: fingerprint as string,
    platform: caller.platform,
    ownerId: caller.ownerId,
  };
}

/**
 * Why a JSON value cannot be stored as jsonb, or undefined: nesting deeper than METADATA_DEPTH,
 * or NUL or an unpaired surrogate in a key or string. Iterative, so hostile depth cannot overflow the stack.
 */
function unstorableJson(value: unknown): string | undefined {
  const pending: { value: unknown; depth: number }[] = [{ value, depth: 1 }];
  for (let item = pending.pop(); item; item = pending.pop()) {
    if (typeof item.value === "string") {
      if (UNSTORABLE.test(item.value)) return "must not contain NUL or unpaired UTF-16 surrogates";
    } else if (typeof item.value === "object" && item.value !== null) {
      if (item.depth > METADATA_DEPTH) return `must be nested at most ${METADATA_DEPTH} levels deep`;
      for (const [key, child] of Object.entries(item.value)) {
        if (UNSTORABLE.test(key)) return "must not contain NUL or unpaired UTF-16 surrogates";
        pending.push({ value: child, depth: item.depth + 1 });
      }
    }
  }
  return undefined;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}
