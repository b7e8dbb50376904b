import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { DirectSecp256k1HdWallet } from "@cosmjs/proto-signing";
import { type SignerData, SigningStargateClient, StargateClient } from "@cosmjs/stargate";
import { Comet38Client } from "@cosmjs/tendermint-rpc";
import { ContentRecord, MsgRegisterContent, QUERY_VERIFY_CONTENT, QueryVerifyContentRequest, QueryVerifyContentResponse } from "@daon/core";
import { TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";
import { contentHash, daonRegistry, startTestChain, type TestChain } from "./test-chain.js";

const fee = (gas: number) => ({ amount: [], gas: String(gas) });

function registration(creator: string, label: string, overrides: Partial<MsgRegisterContent> = {}) {
  return {
    typeUrl: MsgRegisterContent.typeUrl,
    value: MsgRegisterContent.fromPartial({
      creator,
      contentHash: contentHash(label),
      license: "liberation_v1",
      aiTrainingPolicy: "prohibited",
      platform: "api",
      ...overrides,
    }),
  };
}

describe("CosmJS clients against the ledger node", () => {
  let chain: TestChain;
  let signer: SigningStargateClient;
  let reader: StargateClient;
  let comet: Comet38Client;
  let creator: string;

  before(async () => {
    chain = await startTestChain({ wallets: 3 });
    creator = chain.addresses[0];
    comet = await Comet38Client.connect(chain.rpcUrl);
    signer = await SigningStargateClient.connectWithSigner(chain.rpcUrl, chain.wallets[0], { registry: daonRegistry() });
    reader = await StargateClient.connect(chain.rpcUrl);
  });

  after(async () => {
    signer.disconnect();
    reader.disconnect();
    comet.disconnect();
    await chain.stop();
  });

  test("status names the chain and the validator", async () => {
    const status = await comet.status();
    assert.equal(status.nodeInfo.network, chain.chainId);
    assert.equal(await reader.getChainId(), chain.chainId);
    assert.equal(status.validatorInfo.pubkey?.algorithm, "ed25519");
    assert.equal(status.syncInfo.catchingUp, false);
  });

  test("one registration per tx is committed, found by getTx, searchTx and VerifyContent", async () => {
    const msg = registration(creator, "single", { owner: "o_owner1", fingerprint: "fp-1" });
    const result = await signer.signAndBroadcast(creator, [msg], fee(200_000));
    assert.equal(result.code, 0, result.rawLog);
    assert.ok(result.height > 0);

    const tx = await reader.getTx(result.transactionHash);
    assert.equal(tx?.height, result.height);
    assert.equal(tx?.code, 0);
    const registered = tx?.events.find((e) => e.type === "content_registered");
    assert.deepEqual(Object.fromEntries(registered?.attributes.filter((a) => a.key !== "msg_index").map((a) => [a.key, a.value]) ?? []), {
      content_hash: msg.value.contentHash,
      creator,
      owner: "o_owner1",
      license: "liberation_v1",
      platform: "api",
    });

    const byEvent = await reader.searchTx(`content_registered.content_hash='${msg.value.contentHash}'`);
    assert.deepEqual(
      byEvent.map((t) => t.hash),
      [result.transactionHash],
    );

    const query = await comet.abciQuery({
      path: QUERY_VERIFY_CONTENT,
      data: QueryVerifyContentRequest.encode({ contentHash: msg.value.contentHash }).finish(),
    });
    const answer = QueryVerifyContentResponse.decode(query.value);
    assert.equal(answer.verified, true);
    assert.equal(answer.creator, creator);
    assert.equal(answer.owner, "o_owner1");
    assert.equal(answer.height, BigInt(result.height));
    assert.equal(answer.txHash, result.transactionHash);
  });

  test("100 registrations in one tx are all committed", async () => {
    const messages = Array.from({ length: 100 }, (_, i) => registration(creator, `batch-${i}`, { license: i % 2 ? "cc_by" : "cc0" }));
    const result = await signer.signAndBroadcast(creator, messages, fee(2_000_000));
    assert.equal(result.code, 0, result.rawLog);
    const found = await reader.searchTx(`tx.height=${result.height} AND message.sender='${creator}'`);
    assert.deepEqual(
      found.map((t) => t.hash),
      [result.transactionHash],
    );
    const registered = found[0].events.filter((e) => e.type === "content_registered");
    assert.equal(registered.length, 100);
    for (const [i, msg] of messages.entries()) {
      const query = await comet.abciQuery({
        path: QUERY_VERIFY_CONTENT,
        data: QueryVerifyContentRequest.encode({ contentHash: msg.value.contentHash }).finish(),
      });
      const answer = QueryVerifyContentResponse.decode(query.value);
      assert.equal(answer.verified, true, `message ${i}`);
      assert.equal(answer.license, msg.value.license);
    }
  });

  test("a second registration of the same hash fails with the stable already-exists code", async () => {
    const msg = registration(creator, "twice");
    const first = await signer.signAndBroadcast(creator, [msg], fee(200_000));
    assert.equal(first.code, 0);
    const before = await comet.abciQuery({
      path: QUERY_VERIFY_CONTENT,
      data: QueryVerifyContentRequest.encode({ contentHash: msg.value.contentHash }).finish(),
    });
    await assert.rejects(signer.signAndBroadcast(creator, [msg], fee(200_000)), /already registered/);
    const broadcast = await comet.broadcastTxSync({ tx: await signedTx(signer, creator, [msg]) });
    assert.equal(broadcast.code, 3);
    assert.equal(broadcast.codespace, "contentregistry");
    const afterwards = await comet.abciQuery({
      path: QUERY_VERIFY_CONTENT,
      data: QueryVerifyContentRequest.encode({ contentHash: msg.value.contentHash }).finish(),
    });
    assert.deepEqual(afterwards.value, before.value);
  });

  test("wrong sequence, bad signature, foreign chain ID and unknown account are refused with their own codes and change nothing", async () => {
    const account = await reader.getAccount(creator);
    assert.ok(account);
    const heightBefore = await reader.getHeight();
    const hashes = ["seq", "sig", "chain", "unknown"].map((l) => contentHash(`refused-${l}`));
    const offline = async (wallet: TestChain["wallets"][0], address: string, label: string, signerData: SignerData) => {
      const client = await SigningStargateClient.offline(wallet, { registry: daonRegistry() });
      const signed = await client.sign(address, [registration(address, label)], fee(200_000), "", signerData);
      return TxRaw.encode(signed).finish();
    };

    const wrongSequence = await offline(chain.wallets[0], creator, "refused-seq", {
      accountNumber: account.accountNumber,
      sequence: account.sequence + 5,
      chainId: chain.chainId,
    });
    const goodForTamper = TxRaw.decode(
      await offline(chain.wallets[0], creator, "refused-sig", {
        accountNumber: account.accountNumber,
        sequence: account.sequence,
        chainId: chain.chainId,
      }),
    );
    goodForTamper.signatures[0][10] ^= 0xff;
    const badSignature = TxRaw.encode(goodForTamper).finish();
    const foreignChain = await offline(chain.wallets[0], creator, "refused-chain", {
      accountNumber: account.accountNumber,
      sequence: account.sequence,
      chainId: "daon-mainnet-1",
    });
    const stranger = await DirectSecp256k1HdWallet.generate(12, { prefix: "daon" });
    const [{ address: strangerAddress }] = await stranger.getAccounts();
    const unknownAccount = await offline(stranger, strangerAddress, "refused-unknown", {
      accountNumber: 0n,
      sequence: 0,
      chainId: chain.chainId,
    });

    const codes = [];
    for (const tx of [wrongSequence, badSignature, foreignChain, unknownAccount]) {
      const answer = await comet.broadcastTxSync({ tx });
      codes.push([answer.codespace, answer.code]);
    }
    assert.deepEqual(codes, [
      ["sdk", 32],
      ["sdk", 4],
      ["sdk", 28],
      ["sdk", 9],
    ]);

    await waitForHeight(reader, heightBefore + 2);
    for (const hash of hashes) {
      const query = await comet.abciQuery({
        path: QUERY_VERIFY_CONTENT,
        data: QueryVerifyContentRequest.encode({ contentHash: hash }).finish(),
      });
      assert.equal(QueryVerifyContentResponse.decode(query.value).verified, false);
    }
    const accountAfter = await reader.getAccount(creator);
    assert.equal(accountAfter?.sequence, account.sequence);
    assert.equal(await reader.getAccount(strangerAddress), null);
    assert.equal((await comet.numUnconfirmedTxs()).total, 0);
  });

  test("the stored record carries block time, height and tx hash", async () => {
    const msg = registration(creator, "record");
    const result = await signer.signAndBroadcast(creator, [msg], fee(200_000));
    const block = await comet.block(result.height);
    const query = await comet.abciQuery({
      path: QUERY_VERIFY_CONTENT,
      data: QueryVerifyContentRequest.encode({ contentHash: msg.value.contentHash }).finish(),
      prove: true,
    });
    const proofOp = query.proof?.ops[0];
    assert.ok(proofOp);
    const answer = QueryVerifyContentResponse.decode(query.value);
    assert.equal(answer.timestamp, BigInt(Math.floor(block.block.header.time.getTime() / 1000)));
    assert.equal(ContentRecord.typeUrl, "/daoncore.contentregistry.v1.ContentRecord");
  });
});

async function signedTx(
  client: SigningStargateClient,
  address: string,
  messages: { typeUrl: string; value: unknown }[],
): Promise<Uint8Array> {
  const signed = await client.sign(address, messages, fee(200_000), "");
  return TxRaw.encode(signed).finish();
}

async function waitForHeight(client: StargateClient, height: number): Promise<void> {
  for (let i = 0; i < 100 && (await client.getHeight()) < height; i++) await new Promise((r) => setTimeout(r, 100));
}
