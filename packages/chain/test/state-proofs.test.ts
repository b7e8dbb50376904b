import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { fromBase64 } from "@cosmjs/encoding";
import { SigningStargateClient } from "@cosmjs/stargate";
import { Comet38Client } from "@cosmjs/tendermint-rpc";
import {
  commitFromJson,
  headerFromJson,
  MsgRegisterContent,
  type ProofOp,
  ProofError,
  QUERY_VERIFY_CONTENT,
  QueryVerifyContentRequest,
  verifyCommittedHeader,
  verifyRegistrationProof,
} from "@daon/core";
import { CommitmentProof } from "cosmjs-types/cosmos/ics23/v1/proofs";
import { contentHash, daonRegistry, startTestChain, type TestChain } from "./test-chain.js";

describe("abci_query proofs, checked offline by core against the following header", () => {
  let chain: TestChain;
  let comet: Comet38Client;
  let validatorKey: Uint8Array;
  const registered = Array.from({ length: 40 }, (_, i) => contentHash(`proof-${i}`));

  before(async () => {
    chain = await startTestChain({ wallets: 1 });
    comet = await Comet38Client.connect(chain.rpcUrl);
    validatorKey = fromBase64(chain.service.node.home.genesis.validators[0].pub_key.value);
    const client = await SigningStargateClient.connectWithSigner(chain.rpcUrl, chain.wallets[0], {
      registry: daonRegistry(),
      broadcastPollIntervalMs: 100,
    });
    const creator = chain.addresses[0];
    const messages = registered.map((hash) => ({
      typeUrl: MsgRegisterContent.typeUrl,
      value: MsgRegisterContent.fromPartial({
        creator,
        contentHash: hash,
        license: "cc0",
        aiTrainingPolicy: "contact_required",
        owner: "o_proofs",
      }),
    }));
    const result = await client.signAndBroadcast(creator, messages, { amount: [], gas: "2000000" });
    assert.equal(result.code, 0, result.rawLog);
    client.disconnect();
  });

  after(async () => {
    comet.disconnect();
    await chain.stop();
  });

  /** Queries with prove=true, then fetches the next header and its commit over plain JSON-RPC. */
  async function provedQuery(ledgerHash: string) {
    const answer = await comet.abciQuery({
      path: QUERY_VERIFY_CONTENT,
      data: QueryVerifyContentRequest.encode({ contentHash: ledgerHash }).finish(),
      prove: true,
    });
    const op = answer.proof?.ops[0];
    assert.ok(op, "prove=true returns a proof op");
    const next = answer.height! + 1;
    while (chain.service.node.height < next) await new Promise((resolve) => setTimeout(resolve, 20));
    const { result } = await (await fetch(`${chain.rpcUrl}/commit?height=${next}`)).json();
    const header = headerFromJson(result.signed_header.header);
    verifyCommittedHeader(header, commitFromJson(result.signed_header.commit), validatorKey);
    return { op: op as ProofOp, header };
  }

  test("a registered hash is proved present, with the record the ledger stored", async () => {
    for (const hash of [registered[0], registered[17], registered[39]]) {
      const { op, header } = await provedQuery(hash);
      const proved = verifyRegistrationProof(header.appHash, hash, op);
      assert.equal(proved.present, true);
      assert.ok(proved.present);
      assert.equal(proved.record.contentHash, hash);
      assert.equal(proved.record.creator, chain.addresses[0]);
      assert.equal(proved.record.license, "cc0");
      assert.equal(proved.record.aiTrainingPolicy, "contact_required");
      assert.equal(proved.record.owner, "o_proofs");
    }
  });

  test("an absent hash is proved absent", async () => {
    for (const label of ["never-1", "never-2", "never-3"]) {
      const hash = contentHash(label);
      const { op, header } = await provedQuery(hash);
      assert.deepEqual(verifyRegistrationProof(header.appHash, hash, op), { present: false });
    }
  });

  test("a tampered record, proof, app hash or key fails verification", async () => {
    const hash = registered[5];
    const { op, header } = await provedQuery(hash);
    const proof = CommitmentProof.decode(op.data);
    const reencode = (mutate: (p: CommitmentProof) => void): ProofOp => {
      const copy = CommitmentProof.decode(op.data);
      mutate(copy);
      return { ...op, data: CommitmentProof.encode(copy).finish() };
    };
    assert.ok(proof.exist);
    const cases: [string, () => unknown][] = [
      [
        "record byte",
        () =>
          verifyRegistrationProof(
            header.appHash,
            hash,
            reencode((p) => (p.exist!.value[3] ^= 1)),
          ),
      ],
      [
        "sibling hash",
        () =>
          verifyRegistrationProof(
            header.appHash,
            hash,
            reencode((p) => ((p.exist!.path[0].suffix.length ? p.exist!.path[0].suffix : p.exist!.path[0].prefix)[5] ^= 1)),
          ),
      ],
      [
        "dropped path step",
        () =>
          verifyRegistrationProof(
            header.appHash,
            hash,
            reencode((p) => p.exist!.path.pop()),
          ),
      ],
      [
        "app hash",
        () =>
          verifyRegistrationProof(
            Uint8Array.from(header.appHash, (b, i) => (i === 0 ? b ^ 1 : b)),
            hash,
            op,
          ),
      ],
      ["other hash's key", () => verifyRegistrationProof(header.appHash, registered[6], op)],
      ["garbage proof", () => verifyRegistrationProof(header.appHash, hash, { ...op, data: Uint8Array.of(1, 2, 3, 250) })],
    ];
    for (const [name, verify] of cases) assert.throws(verify, ProofError, name);

    const absent = contentHash("never-4");
    const absence = await provedQuery(absent);
    const tamperedNeighbour = CommitmentProof.decode(absence.op.data);
    const neighbour = tamperedNeighbour.nonexist!.left ?? tamperedNeighbour.nonexist!.right!;
    neighbour.value[0] ^= 1;
    assert.throws(
      () =>
        verifyRegistrationProof(absence.header.appHash, absent, {
          ...absence.op,
          data: CommitmentProof.encode(tamperedNeighbour).finish(),
        }),
      ProofError,
    );
    // An absence proof cannot be replayed for a hash that is present.
    assert.throws(() => verifyRegistrationProof(absence.header.appHash, hash, { ...absence.op, key: op.key }), ProofError);
  });

  test("a header with a tampered app hash no longer matches the validator's commit", async () => {
    const { header } = await provedQuery(registered[1]);
    const { result } = await (await fetch(`${chain.rpcUrl}/commit?height=${header.height}`)).json();
    const commit = commitFromJson(result.signed_header.commit);
    const forged = { ...header, appHash: Uint8Array.from(header.appHash, (b, i) => (i === 31 ? b ^ 1 : b)) };
    assert.throws(() => verifyCommittedHeader(forged, commit, validatorKey), /another block/);
    const signature = commit.signatures[0].signature;
    signature[7] ^= 1;
    assert.throws(() => verifyCommittedHeader(header, commit, validatorKey), /signature does not verify/);
  });
});
