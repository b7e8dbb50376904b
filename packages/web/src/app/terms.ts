/** Licences and AI-training policies in plain words, as the portal offers and shows them. */

export const LICENCE_CHOICES = [
  { value: "liberation_v1", label: "Liberation v1 (DAON's default)", explanation: "DAON's default licence, Liberation v1." },
  {
    value: "all-rights-reserved",
    label: "All rights reserved",
    explanation: "Nobody may copy, share or adapt the work without your permission.",
  },
  { value: "cc-by", label: "CC BY", explanation: "Anyone may share and adapt it, even commercially, if they credit you." },
  { value: "cc-by-sa", label: "CC BY-SA", explanation: "As CC BY, and adaptations must be shared under the same licence." },
  { value: "cc-by-nc", label: "CC BY-NC", explanation: "Anyone may share and adapt it with credit, but not for commercial purposes." },
  { value: "cc-by-nc-sa", label: "CC BY-NC-SA", explanation: "Non-commercial, with credit, and adaptations under the same licence." },
  { value: "cc-by-nd", label: "CC BY-ND", explanation: "Anyone may share it unchanged, with credit; no adaptations." },
  { value: "cc0", label: "CC0", explanation: "You waive your rights: anyone may use it for anything, without credit." },
  { value: "public-domain", label: "Public domain", explanation: "The work is in the public domain." },
] as const;

export const AI_POLICY_CHOICES = [
  { value: "prohibited", label: "No AI training", explanation: "The work must not be used to train AI models." },
  {
    value: "contact_required",
    label: "Ask me first",
    explanation: "AI training only with your permission: give an e-mail address or web page where people can ask.",
  },
  { value: "open", label: "AI training allowed", explanation: "The work may be used to train AI models." },
] as const;

const LEDGER_FORM: Record<string, string> = {
  cc_by: "cc-by",
  cc_by_sa: "cc-by-sa",
  cc_by_nc: "cc-by-nc",
  cc_by_nc_sa: "cc-by-nc-sa",
  cc_by_nd: "cc-by-nd",
  all_rights_reserved: "all-rights-reserved",
  public_domain: "public-domain",
};

/** The label of a licence as any answer spells it (API or ledger form). */
export function licenceLabel(licence: string): string {
  const key = LEDGER_FORM[licence] ?? licence;
  return LICENCE_CHOICES.find((choice) => choice.value === key)?.label ?? licence;
}

export function licenceExplanation(licence: string): string {
  const key = LEDGER_FORM[licence] ?? licence;
  return LICENCE_CHOICES.find((choice) => choice.value === key)?.explanation ?? "";
}

export function aiPolicyLabel(policy: string): string {
  return AI_POLICY_CHOICES.find((choice) => choice.value === policy)?.label ?? policy;
}

export function aiPolicyExplanation(policy: string): string {
  return AI_POLICY_CHOICES.find((choice) => choice.value === policy)?.explanation ?? "";
}
