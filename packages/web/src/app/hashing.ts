/**
 * Content hashing in the browser, with `core`'s canonicalisation (the same code the API runs),
 * so what the portal registers is what the API would compute from the content itself.
 */
export { ContentError, hashFile, hashRawText, hashText, parseContentHash } from "@daon/sdk";
