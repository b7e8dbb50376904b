import {
  AI_TRAINING_POLICIES,
  accountAddress,
  ContentRecord,
  equalBytes,
  isAccountAddress,
  MsgNameSuccessor,
  MsgRegisterContent,
  MsgTransferOwnership,
  Params,
} from "@daon/core";
import { bytesToHex } from "@noble/hashes/utils.js";
import { BaseAccount } from "cosmjs-types/cosmos/auth/v1beta1/auth";
import { PubKey } from "cosmjs-types/cosmos/crypto/secp256k1/keys";
import { SignMode } from "cosmjs-types/cosmos/tx/signing/v1beta1/signing";
import { AuthInfo, SignDoc, TxBody, TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import { registry, sdk, TxError } from "./errors.js";
import { stateKeys } from "@daon/core";
import { type LedgerState, StateOverlay, type StateReader } from "./ledger-state.js";
import { nativeDigest, txHashHex } from "./digest.js";
import { Secp256k1Verifier } from "./signatures.js";

export const SECP256K1_PUBKEY_TYPE = "/cosmos.crypto.secp256k1.PubKey";
export const BASE_ACCOUNT_TYPE = "/cosmos.auth.v1beta1.BaseAccount";
const CONTENT_HASH = /^sha256:[0-9a-f]{64}$/;
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const MAX_MEMO = 256;
const MAX_OWNER = 128;
const MAX_VERIFIED_CACHE = 100_000;

/** Gas is bounded though the chain charges no fees: it caps the work one tx or block may ask for. */
export const gasSchedule = { perTx: 10_000n, perByte: 10n, perMessage: 2_000n, maxPerTx: 50_000_000n } as const;

export interface TxEvent {
  type: string;
  attributes: { key: string; value: string; index: boolean }[];
}

export interface TxResult {
  code: number;
  codespace: string;
  log: string;
  data: Uint8Array;
  gasWanted: bigint;
  gasUsed: bigint;
  events: TxEvent[];
}

export interface BlockContext {
  chainId: string;
  height: bigint;
  /** Block time, unix seconds: the only clock the state machine sees. */
  time: bigint;
}

/** What CheckTx learned about an accepted tx, so the mempool can order by signer and sequence. */
export interface CheckedTx {
  signer: string;
  sequence: bigint;
  gasWanted: bigint;
}

interface DecodedTx {
  raw: Uint8Array;
  body: TxBody;
  authInfo: AuthInfo;
  signature: Uint8Array;
  signDocBody: TxRaw;
  publicKey: Uint8Array;
  signer: string;
  sequence: bigint;
  gasWanted: bigint;
  messages: Message[];
}

type Message =
  | { kind: "register"; typeUrl: string; value: MsgRegisterContent }
  | { kind: "transfer"; typeUrl: string; value: MsgTransferOwnership }
  | { kind: "successor"; typeUrl: string; value: MsgNameSuccessor };

const decoders = new Map<string, (bytes: Uint8Array) => Omit<Message, "typeUrl">>([
  [MsgRegisterContent.typeUrl, (bytes) => ({ kind: "register", value: MsgRegisterContent.decode(bytes) })],
  [MsgTransferOwnership.typeUrl, (bytes) => ({ kind: "transfer", value: MsgTransferOwnership.decode(bytes) })],
  [MsgNameSuccessor.typeUrl, (bytes) => ({ kind: "successor", value: MsgNameSuccessor.decode(bytes) })],
]);

const success = (gasWanted: bigint, gasUsed: bigint, events: TxEvent[]): TxResult => ({
  code: 0,
  codespace: "",
  log: "",
  data: new Uint8Array(),
  gasWanted,
  gasUsed,
  events,
});

export function failure(error: TxError, gasWanted = 0n, gasUsed = 0n): TxResult {
  return { code: error.code, codespace: error.codespace, log: error.message, data: new Uint8Array(), gasWanted, gasUsed, events: [] };
}

// msg_index tells messages apart within a tx; it is no search key, so the tx index skips it.
function attributes(values: Record<string, string>): TxEvent["attributes"] {
  return Object.entries(values).map(([key, value]) => ({ key, value, index: key !== "msg_index" }));
}

/**
 * The DAON application: auth (accounts, sequences, signatures) and the content registry.
 * A pure function of state and block: no clock, randomness or I/O (time comes from the block).
 */
export class RegistryApp {
  readonly #signatures = new Secp256k1Verifier();
  /** Sign docs already verified: a tx checked at admission is not verified again when delivered. */
  readonly #verified = new Set<string>();

  constructor(
    private readonly chainId: string,
    /** Chain IDs this deployment used before: a tx signed for one of them is named as such. */
    private readonly foreignChainIds: readonly string[] = ["daon-mainnet-1"],
  ) {}

  /**
   * Validates a tx against committed state for admission to the mempool. `expectedSequence`
   * gives the signer's next sequence counting txs already waiting in the mempool.
   */
  checkTx(
    state: StateReader,
    ctx: BlockContext,
    raw: Uint8Array,
    expectedSequence?: (signer: string) => bigint | undefined,
  ): { result: TxResult; checked?: CheckedTx } {
    try {
      const tx = this.#decode(raw);
      const overlay = new StateOverlay(state);
      this.#authenticate(overlay, ctx, tx, expectedSequence?.(tx.signer));
      const gasUsed = gasFor(tx);
      this.#runMessages(overlay, ctx, tx);
      return {
        result: success(tx.gasWanted, gasUsed, []),
        checked: { signer: tx.signer, sequence: tx.sequence, gasWanted: tx.gasWanted },
      };
    } catch (error) {
      return { result: failure(asTxError(error)) };
    }
  }

  /** Gas a tx would use, run against committed state without its signature (as the SDK simulates). */
  simulate(state: StateReader, ctx: BlockContext, raw: Uint8Array): TxResult {
    try {
      const tx = this.#decode(raw);
      if (!readAccount(state, tx.signer)) throw sdk.unknownAddress(`account ${tx.signer} does not exist`);
      const events = this.#runMessages(new StateOverlay(state), ctx, tx);
      return success(tx.gasWanted, gasFor(tx), events);
    } catch (error) {
      return failure(asTxError(error));
    }
  }

  /** Executes a block's txs in order; a tx applies all its messages or none. */
  executeBlock(
    state: LedgerState,
    ctx: BlockContext,
    txs: readonly Uint8Array[],
  ): { results: TxResult[]; changes: Map<string, Uint8Array> } {
    const block = new StateOverlay(state);
    const results = txs.map((raw) => this.#deliverTx(block, ctx, raw));
    return { results, changes: block.writes };
  }

  #deliverTx(block: StateOverlay, ctx: BlockContext, raw: Uint8Array): TxResult {
    let tx: DecodedTx;
    try {
      tx = this.#decode(raw);
    } catch (error) {
      return failure(asTxError(error));
    }
    // As in the Cosmos SDK, the signer's sequence is spent even when a message fails.
    const ante = new StateOverlay(block);
    let anteEvents: TxEvent[];
    try {
      anteEvents = this.#authenticate(ante, ctx, tx, undefined);
    } catch (error) {
      return failure(asTxError(error), tx.gasWanted);
    }
    ante.mergeInto(block);
    const gasUsed = gasFor(tx);
    const messages = new StateOverlay(block);
    try {
      const events = this.#runMessages(messages, ctx, tx);
      messages.mergeInto(block);
      return success(tx.gasWanted, gasUsed, [...anteEvents, ...events]);
    } catch (error) {
      return failure(asTxError(error), tx.gasWanted, gasUsed);
    }
  }

  #decode(raw: Uint8Array): DecodedTx {
    let envelope: TxRaw;
    let body: TxBody;
    let authInfo: AuthInfo;
    try {
      envelope = TxRaw.decode(raw);
      body = TxBody.decode(envelope.bodyBytes);
      authInfo = AuthInfo.decode(envelope.authInfoBytes);
    } catch (error) {
      throw sdk.txDecode(`tx parse error: ${(error as Error).message}`);
    }
    // As the SDK's ADR-027 check: TxRaw's bytes are exactly its canonical encoding, so the
    // signed content cannot be re-framed (wrong wire type, long varint) under another tx hash.
    if (!equalBytes(TxRaw.encode(envelope).finish(), raw)) throw sdk.txDecode("tx parse error: TxRaw is not canonically encoded (ADR-027)");
    if (body.messages.length === 0) throw sdk.invalidRequest("must contain at least one message");
    if (envelope.signatures.length !== 1 || authInfo.signerInfos.length !== 1) {
      throw sdk.unauthorized("a tx carries exactly one signer and one signature");
    }
    const signerInfo = authInfo.signerInfos[0];
    if (signerInfo.modeInfo?.single?.mode !== SignMode.SIGN_MODE_DIRECT) {
      throw sdk.unauthorized("only SIGN_MODE_DIRECT is accepted");
    }
    if (signerInfo.publicKey?.typeUrl !== SECP256K1_PUBKEY_TYPE) throw sdk.invalidPubKey("signer key must be secp256k1");
    let publicKey: Uint8Array;
    try {
      publicKey = PubKey.decode(signerInfo.publicKey.value).key;
    } catch {
      throw sdk.invalidPubKey("undecodable signer key");
    }
    if (body.memo.length > MAX_MEMO) throw sdk.memoTooLarge(`memo longer than ${MAX_MEMO} characters`);
    const messages = body.messages.map((any, index): Message => {
      const decode = decoders.get(any.typeUrl);
      if (!decode) throw sdk.unknownRequest(`unrecognized message type ${JSON.stringify(any.typeUrl.slice(0, 128))} at index ${index}`);
      try {
        return { ...decode(any.value), typeUrl: any.typeUrl } as Message;
      } catch (error) {
        throw sdk.txDecode(`message ${index}: ${(error as Error).message}`);
      }
    });
    const signer = messages[0].value.creator;
    if (messages.some((m) => m.value.creator !== signer)) throw sdk.invalidRequest("all messages of a tx must have the same creator");
    if (!isAccountAddress(signer)) throw sdk.invalidRequest(`creator ${JSON.stringify(signer)} is not a daon address`);
    const gasWanted = authInfo.fee?.gasLimit ?? 0n;
    if (gasWanted > gasSchedule.maxPerTx) throw sdk.invalidGasLimit(`gas limit ${gasWanted} above ${gasSchedule.maxPerTx}`);
    return {
      raw,
      body,
      authInfo,
      signature: envelope.signatures[0],
      signDocBody: envelope,
      publicKey,
      signer,
      sequence: signerInfo.sequence,
      gasWanted,
      messages,
    };
  }

  #authenticate(state: StateOverlay, ctx: BlockContext, tx: DecodedTx, expectedSequence: bigint | undefined): TxEvent[] {
    if (tx.body.timeoutHeight !== 0n && tx.body.timeoutHeight < ctx.height) {
      throw sdk.txTimeoutHeight(`tx timed out at height ${tx.body.timeoutHeight}`);
    }
    if (gasFor(tx) > tx.gasWanted) throw sdk.outOfGas(`out of gas: wanted ${tx.gasWanted}, needs ${gasFor(tx)}`);
    const account = readAccount(state, tx.signer);
    if (!account) throw sdk.unknownAddress(`account ${tx.signer} does not exist`);
    const successor = state.get(stateKeys.successor(tx.signer));
    if (successor) throw sdk.unauthorized(`account ${tx.signer} is retired; its successor signs now`);
    if (accountAddress(tx.publicKey) !== tx.signer) throw sdk.invalidPubKey(`signer key does not belong to ${tx.signer}`);
    const expected = expectedSequence ?? account.sequence;
    if (tx.sequence !== expected) {
      throw sdk.wrongSequence(`account sequence mismatch, expected ${expected}, got ${tx.sequence}`);
    }
    if (!this.#signatureValid(tx, this.chainId, account.accountNumber)) {
      const foreign = this.foreignChainIds.find((id) => id !== this.chainId && this.#signatureValid(tx, id, account.accountNumber));
      if (foreign) throw sdk.invalidChainId(`tx was signed for chain ${foreign}, this is ${this.chainId}`);
      throw sdk.unauthorized(
        `signature verification failed; please verify account number (${account.accountNumber}), sequence (${tx.sequence}) and chain-id (${this.chainId})`,
      );
    }
    writeAccount(state, {
      ...account,
      pubKey: { typeUrl: SECP256K1_PUBKEY_TYPE, value: PubKey.encode({ key: tx.publicKey }).finish() },
      sequence: tx.sequence + 1n,
    });
    return [
      { type: "tx", attributes: attributes({ acc_seq: `${tx.signer}/${tx.sequence}` }) },
      { type: "tx", attributes: attributes({ signature: Buffer.from(tx.signature).toString("base64") }) },
    ];
  }

  #signatureValid(tx: DecodedTx, chainId: string, accountNumber: bigint): boolean {
    const signDoc = SignDoc.encode({
      bodyBytes: tx.signDocBody.bodyBytes,
      authInfoBytes: tx.signDocBody.authInfoBytes,
      chainId,
      accountNumber,
    }).finish();
    const id = `${bytesToHex(nativeDigest(signDoc))}:${bytesToHex(tx.signature)}:${bytesToHex(tx.publicKey)}`;
    if (this.#verified.has(id)) return true;
    const valid = this.#signatures.verify(tx.signature, signDoc, tx.publicKey);
    if (valid) {
      if (this.#verified.size >= MAX_VERIFIED_CACHE) this.#verified.clear();
      this.#verified.add(id);
    }
    return valid;
  }

  #runMessages(state: StateOverlay, ctx: BlockContext, tx: DecodedTx): TxEvent[] {
    const params = readParams(state);
    const hash = txHashHex(tx.raw);
    return tx.messages.flatMap((message, index) => {
      const msgIndex = String(index);
      const base = {
        type: "message",
        attributes: attributes({ action: message.typeUrl, sender: tx.signer, module: "contentregistry", msg_index: msgIndex }),
      };
      return [base, applyMessage(state, ctx, params, message, hash, msgIndex)];
    });
  }
}

function applyMessage(
  state: StateOverlay,
  ctx: BlockContext,
  params: Params,
  message: Message,
  txHashHex: string,
  msgIndex: string,
): TxEvent {
  switch (message.kind) {
    case "register":
      return registerContent(state, ctx, params, message.value, txHashHex, msgIndex);
    case "transfer":
      return transferOwnership(state, ctx, message.value, msgIndex);
    case "successor":
      return nameSuccessor(state, message.value, msgIndex);
  }
}

function registerContent(
  state: StateOverlay,
  ctx: BlockContext,
  params: Params,
  msg: MsgRegisterContent,
  txHashHex: string,
  msgIndex: string,
): TxEvent {
  if (!CONTENT_HASH.test(msg.contentHash))
    throw registry.invalidHash(`content hash must be sha256: and 64 lowercase hex, got ${JSON.stringify(msg.contentHash.slice(0, 80))}`);
  if (!params.licenses.includes(msg.license))
    throw registry.invalidLicense(`licence ${JSON.stringify(msg.license.slice(0, 64))} is not one of ${params.licenses.join(", ")}`);
  if (msg.aiTrainingPolicy !== "" && !(AI_TRAINING_POLICIES as readonly string[]).includes(msg.aiTrainingPolicy)) {
    throw registry.invalidPolicy(`AI training policy must be one of ${AI_TRAINING_POLICIES.join(", ")}`);
  }
  checkField("fingerprint", msg.fingerprint, params.maxFingerprintLength, PRINTABLE_ASCII);
  checkField("platform", msg.platform, params.maxPlatformLength, PRINTABLE_ASCII);
  checkField("owner", msg.owner, params.maxOwnerLength, PRINTABLE_ASCII);
  const key = stateKeys.record(msg.contentHash);
  if (state.get(key)) throw registry.alreadyExists(`content ${msg.contentHash} is already registered`);
  const record = ContentRecord.fromPartial({
    contentHash: msg.contentHash,
    creator: msg.creator,
    license: msg.license,
    timestamp: ctx.time,
    platform: msg.platform,
    fingerprint: msg.fingerprint,
    owner: msg.owner,
    aiTrainingPolicy: msg.aiTrainingPolicy,
    height: ctx.height,
    txHash: txHashHex,
  });
  state.set(key, ContentRecord.encode(record).finish());
  return {
    type: "content_registered",
    attributes: attributes({
      content_hash: msg.contentHash,
      creator: msg.creator,
      owner: msg.owner,
      license: msg.license,
      platform: msg.platform,
      msg_index: msgIndex,
    }),
  };
}

function transferOwnership(state: StateOverlay, ctx: BlockContext, msg: MsgTransferOwnership, msgIndex: string): TxEvent {
  if (!CONTENT_HASH.test(msg.contentHash)) throw registry.invalidHash("content hash must be sha256: and 64 lowercase hex");
  checkField("new_owner", msg.newOwner, MAX_OWNER, PRINTABLE_ASCII);
  if (msg.newOwner === "") throw registry.invalidField("new_owner is empty");
  const key = stateKeys.record(msg.contentHash);
  const stored = state.get(key);
  if (!stored) throw registry.notFound(`content ${msg.contentHash} is not registered`);
  const record = ContentRecord.decode(stored);
  if (!actsFor(state, msg.creator, record.creator)) throw registry.notAuthorized(`${msg.creator} may not transfer ${msg.contentHash}`);
  const from = record.owner;
  record.transferHistory.push(`${ctx.height}:${from}:${msg.newOwner}`);
  record.owner = msg.newOwner;
  state.set(key, ContentRecord.encode(record).finish());
  return {
    type: "ownership_transferred",
    attributes: attributes({ content_hash: msg.contentHash, from, to: msg.newOwner, msg_index: msgIndex }),
  };
}

function nameSuccessor(state: StateOverlay, msg: MsgNameSuccessor, msgIndex: string): TxEvent {
  if (!isAccountAddress(msg.successor)) throw registry.invalidField("successor is not a daon address");
  if (msg.successor === msg.creator) throw registry.invalidField("an account cannot succeed itself");
  if (!readAccount(state, msg.successor)) {
    const accountNumber = readNextAccountNumber(state);
    writeAccount(state, BaseAccount.fromPartial({ address: msg.successor, accountNumber, sequence: 0n }));
    state.set(stateKeys.nextAccountNumber, encodeUint64(accountNumber + 1n));
  }
  state.set(stateKeys.successor(msg.creator), new TextEncoder().encode(msg.successor));
  return { type: "successor_named", attributes: attributes({ account: msg.creator, successor: msg.successor, msg_index: msgIndex }) };
}

/** The signer acts for `creator` if it is the creator or a successor named down the line from it. */
function actsFor(state: StateReader, signer: string, creator: string): boolean {
  let current: string | undefined = creator;
  for (let hops = 0; current && hops < 64; hops++) {
    if (current === signer) return true;
    const next = state.get(stateKeys.successor(current));
    current = next && new TextDecoder().decode(next);
  }
  return false;
}

function checkField(name: string, value: string, max: number, pattern: RegExp): void {
  if (value.length > max) throw registry.invalidField(`${name} longer than ${max} characters`);
  if (!pattern.test(value)) throw registry.invalidField(`${name} must be printable ASCII`);
}

function gasFor(tx: DecodedTx): bigint {
  return gasSchedule.perTx + gasSchedule.perByte * BigInt(tx.raw.length) + gasSchedule.perMessage * BigInt(tx.messages.length);
}

function asTxError(error: unknown): TxError {
  if (error instanceof TxError) return error;
  return sdk.txDecode(`invalid tx: ${(error as Error)?.message ?? String(error)}`);
}

export function readAccount(state: StateReader, address: string): BaseAccount | undefined {
  const bytes = state.get(stateKeys.account(address));
  return bytes && BaseAccount.decode(bytes);
}

function writeAccount(state: StateOverlay, account: BaseAccount): void {
  state.set(stateKeys.account(account.address), BaseAccount.encode(account).finish());
}

export function readParams(state: StateReader): Params {
  const bytes = state.get(stateKeys.params);
  return bytes ? Params.decode(bytes) : Params.fromPartial({});
}

function readNextAccountNumber(state: StateReader): bigint {
  const bytes = state.get(stateKeys.nextAccountNumber);
  return bytes ? new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0) : 0n;
}

export function encodeUint64(value: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, value);
  return bytes;
}
