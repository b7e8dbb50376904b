import { ContentError } from "./canonicalise.js";

/** Licences in their API form. */
export const LICENCES = [
  "liberation_v1",
  "cc0",
  "cc-by",
  "cc-by-sa",
  "cc-by-nc",
  "cc-by-nc-sa",
  "cc-by-nd",
  "all-rights-reserved",
  "public-domain",
] as const;
export type Licence = (typeof LICENCES)[number];

/** Licences in the form the ledger stores. */
export const LEDGER_LICENCES = [
  "liberation_v1",
  "cc0",
  "cc_by",
  "cc_by_sa",
  "cc_by_nc",
  "cc_by_nc_sa",
  "cc_by_nd",
  "all_rights_reserved",
  "public_domain",
] as const;
export type LedgerLicence = (typeof LEDGER_LICENCES)[number];

/** A licence in both forms. */
export interface ParsedLicence {
  readonly api: Licence;
  readonly ledger: LedgerLicence;
}

// Spelled out, since liberation_v1 keeps its underscore in the API form.
const API_FORM: Readonly<Record<LedgerLicence, Licence>> = {
  liberation_v1: "liberation_v1",
  cc0: "cc0",
  cc_by: "cc-by",
  cc_by_sa: "cc-by-sa",
  cc_by_nc: "cc-by-nc",
  cc_by_nc_sa: "cc-by-nc-sa",
  cc_by_nd: "cc-by-nd",
  all_rights_reserved: "all-rights-reserved",
  public_domain: "public-domain",
};

// Keyed by input as normalised by inputKey.
const LICENCE_ALIASES: ReadonlyMap<string, LedgerLicence> = new Map([["copyright", "all_rights_reserved"]]);

/** AI training policies. */
export const AI_TRAINING_POLICIES = ["prohibited", "contact_required", "open"] as const;
export type AiTrainingPolicy = (typeof AI_TRAINING_POLICIES)[number];

/** A licence from user input: any case, `-` and `_` alike, `copyright` for all-rights-reserved. */
export function parseLicence(input: string): ParsedLicence {
  const key = inputKey(input);
  const ledger = LICENCE_ALIASES.get(key) ?? LEDGER_LICENCES.find((licence) => licence === key);
  if (ledger === undefined) {
    throw new ContentError("VALIDATION_ERROR", `Unknown licence ${JSON.stringify(input)}; use one of: ${LICENCES.join(", ")}.`);
  }
  return { api: API_FORM[ledger], ledger };
}

/** The API form of a licence read from the ledger; only the exact ledger form is accepted. */
export function licenceFromLedger(ledger: string): Licence {
  const known = LEDGER_LICENCES.find((licence) => licence === ledger);
  if (known === undefined) {
    throw new ContentError("VALIDATION_ERROR", `Unknown ledger licence ${JSON.stringify(ledger)}.`);
  }
  return API_FORM[known];
}

/** An AI training policy from user input: any case, `-` and `_` alike. */
export function parseAiTrainingPolicy(input: string): AiTrainingPolicy {
  const key = inputKey(input);
  const policy = AI_TRAINING_POLICIES.find((known) => known === key);
  if (policy === undefined) {
    throw new ContentError(
      "VALIDATION_ERROR",
      `Unknown AI training policy ${JSON.stringify(input)}; use one of: ${AI_TRAINING_POLICIES.join(", ")}.`,
    );
  }
  return policy;
}

// Lowercase with `_` for `-`: that is the ledger spelling, so lookups need no second table.
function inputKey(input: string): string {
  return input.toLowerCase().replaceAll("-", "_");
}
