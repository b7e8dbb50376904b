import { type MessageOf, messageCodec } from "./codec.js";

const PACKAGE = "daoncore.contentregistry.v1";

// Field numbers are those of the published DAON chain; numbers from 6 (records: 9) on are additions.
const registerContent = {
  creator: [1, "string"],
  contentHash: [2, "string"],
  license: [3, "string"],
  fingerprint: [4, "string"],
  platform: [5, "string"],
  owner: [6, "string"],
  aiTrainingPolicy: [7, "string"],
} as const;
export const MsgRegisterContent = messageCodec(`/${PACKAGE}.MsgRegisterContent`, registerContent);
export type MsgRegisterContent = MessageOf<typeof registerContent>;

const transferOwnership = {
  creator: [1, "string"],
  contentHash: [2, "string"],
  newOwner: [3, "string"],
} as const;
export const MsgTransferOwnership = messageCodec(`/${PACKAGE}.MsgTransferOwnership`, transferOwnership);
export type MsgTransferOwnership = MessageOf<typeof transferOwnership>;

const nameSuccessor = {
  creator: [1, "string"],
  successor: [2, "string"],
} as const;
export const MsgNameSuccessor = messageCodec(`/${PACKAGE}.MsgNameSuccessor`, nameSuccessor);
export type MsgNameSuccessor = MessageOf<typeof nameSuccessor>;

const contentRecord = {
  contentHash: [1, "string"],
  creator: [2, "string"],
  license: [3, "string"],
  timestamp: [4, "int64"],
  platform: [5, "string"],
  fingerprint: [6, "string"],
  revisionHistory: [7, "repeatedString"],
  transferHistory: [8, "repeatedString"],
  owner: [9, "string"],
  aiTrainingPolicy: [10, "string"],
  height: [11, "int64"],
  txHash: [12, "string"],
} as const;
export const ContentRecord = messageCodec(`/${PACKAGE}.ContentRecord`, contentRecord);
export type ContentRecord = MessageOf<typeof contentRecord>;

const verifyContentRequest = { contentHash: [1, "string"] } as const;
export const QueryVerifyContentRequest = messageCodec(`/${PACKAGE}.QueryVerifyContentRequest`, verifyContentRequest);
export type QueryVerifyContentRequest = MessageOf<typeof verifyContentRequest>;

const verifyContentResponse = {
  verified: [1, "bool"],
  creator: [2, "string"],
  license: [3, "string"],
  timestamp: [4, "int64"],
  owner: [5, "string"],
  aiTrainingPolicy: [6, "string"],
  height: [7, "int64"],
  txHash: [8, "string"],
} as const;
export const QueryVerifyContentResponse = messageCodec(`/${PACKAGE}.QueryVerifyContentResponse`, verifyContentResponse);
export type QueryVerifyContentResponse = MessageOf<typeof verifyContentResponse>;

const params = {
  licenses: [1, "repeatedString"],
  maxFingerprintLength: [2, "uint32"],
  maxPlatformLength: [3, "uint32"],
  maxOwnerLength: [4, "uint32"],
} as const;
export const Params = messageCodec(`/${PACKAGE}.Params`, params);
export type Params = MessageOf<typeof params>;

export const QUERY_VERIFY_CONTENT = `/${PACKAGE}.Query/VerifyContent`;
export const QUERY_PARAMS = `/${PACKAGE}.Query/Params`;

/** Every message a DAON transaction may carry, for CosmJS registries and our decoder alike. */
export const registryTypes = [MsgRegisterContent, MsgTransferOwnership, MsgNameSuccessor] as const;
