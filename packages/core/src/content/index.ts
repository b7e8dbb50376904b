export { canonicaliseText, ContentError, type ContentErrorCode } from "./canonicalise.js";
export {
  type ContentHash,
  EMPTY_CONTENT_HASH,
  fromLedgerHash,
  hashBytes,
  hashRawText,
  hashText,
  type LedgerHash,
  parseContentHash,
  toLedgerHash,
} from "./hash.js";
export {
  AI_TRAINING_POLICIES,
  type AiTrainingPolicy,
  LEDGER_LICENCES,
  type LedgerLicence,
  LICENCES,
  type Licence,
  licenceFromLedger,
  type ParsedLicence,
  parseAiTrainingPolicy,
  parseLicence,
} from "./licences.js";
