export * from "./accounts/address.js";
export * from "./blocks/hashing.js";
export * from "./blocks/merkle.js";
export * from "./proofs/state-tree.js";
export * from "./proofs/verify.js";
export * from "./registry/codec.js";
export * from "./registry/messages.js";
