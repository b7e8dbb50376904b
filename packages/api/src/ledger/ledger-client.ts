import { DirectSecp256k1HdWallet, type GeneratedType, Registry } from "@cosmjs/proto-signing";
import { defaultRegistryTypes, SigningStargateClient } from "@cosmjs/stargate";
import { Comet38Client, type comet38, HttpClient } from "@cosmjs/tendermint-rpc";
import { QUERY_VERIFY_CONTENT, QueryVerifyContentRequest, QueryVerifyContentResponse, registryTypes } from "@daon/core";
import { BaseAccount } from "cosmjs-types/cosmos/auth/v1beta1/auth";
import { QueryAccountRequest, QueryAccountResponse } from "cosmjs-types/cosmos/auth/v1beta1/query";
import { TxRaw } from "cosmjs-types/cosmos/tx/v1beta1/tx";

export interface LedgerStatus {
  chainId: string;
  height: number;
  latestBlockTime: Date;
  catchingUp: boolean;
}

export interface BroadcastOutcome {
  code: number;
  codespace: string;
  log: string;
}

export type EncodedMessage = { typeUrl: string; value: unknown };

const registry = new Registry([...defaultRegistryTypes, ...registryTypes.map((type): [string, GeneratedType] => [type.typeUrl, type])]);

/**
 * The API's view of the ledger node, through CosmJS: CometBFT RPC reads, queries, and
 * signing with the API wallet. Calls fail with the transport's error while the node is down.
 */
export class LedgerClient {
  private constructor(
    private readonly rpcUrl: string,
    readonly comet: Comet38Client,
    private readonly signing: SigningStargateClient,
    readonly address: string,
    readonly chainId: string,
  ) {}

  static async connect(rpcUrl: string, mnemonic: string, chainId: string): Promise<LedgerClient> {
    const wallet = await DirectSecp256k1HdWallet.fromMnemonic(mnemonic.trim(), { prefix: "daon" });
    const [{ address }] = await wallet.getAccounts();
    const signing = await SigningStargateClient.offline(wallet, { registry });
    // Comet38Client.create skips the version probe, so the client exists even while the node is down.
    const comet = Comet38Client.create(new HttpClient(rpcUrl, 5000));
    return new LedgerClient(rpcUrl, comet, signing, address, chainId);
  }

  async status(): Promise<LedgerStatus> {
    const status = await this.comet.status();
    return {
      chainId: status.nodeInfo.network,
      height: status.syncInfo.latestBlockHeight,
      latestBlockTime: new Date(status.syncInfo.latestBlockTime.getTime()),
      catchingUp: status.syncInfo.catchingUp,
    };
  }

  async account(): Promise<{ accountNumber: bigint; sequence: number }> {
    const answer = await this.comet.abciQuery({
      path: "/cosmos.auth.v1beta1.Query/Account",
      data: QueryAccountRequest.encode({ address: this.address }).finish(),
    });
    if (answer.code !== 0) throw new Error(`the API wallet ${this.address} is not an account on the ledger: ${answer.log}`);
    const account = BaseAccount.decode(QueryAccountResponse.decode(answer.value).account!.value);
    return { accountNumber: account.accountNumber, sequence: Number(account.sequence) };
  }

  async sign(messages: EncodedMessage[], signer: { accountNumber: bigint; sequence: number }, gas: number): Promise<Uint8Array> {
    const signed = await this.signing.sign(this.address, messages, { amount: [], gas: String(gas) }, "", {
      ...signer,
      chainId: this.chainId,
    });
    return TxRaw.encode(signed).finish();
  }

  async broadcastSync(raw: Uint8Array): Promise<BroadcastOutcome> {
    const answer = await this.comet.broadcastTxSync({ tx: raw });
    return { code: answer.code, codespace: answer.codespace ?? "", log: answer.log ?? "" };
  }

  async isCommitted(txHash: string): Promise<boolean> {
    try {
      await this.comet.tx({ hash: Buffer.from(txHash, "hex") });
      return true;
    } catch (error) {
      if (/not found/i.test(String((error as Error).message))) return false;
      throw error;
    }
  }

  async verifyContent(ledgerContentHash: string, prove = false) {
    const answer = await this.comet.abciQuery({
      path: QUERY_VERIFY_CONTENT,
      data: QueryVerifyContentRequest.encode({ contentHash: ledgerContentHash }).finish(),
      prove,
    });
    return { response: QueryVerifyContentResponse.decode(answer.value), height: answer.height ?? 0, proof: answer.proof, key: answer.key };
  }

  block(height: number): Promise<comet38.BlockResponse> {
    return this.comet.block(height);
  }

  blockResults(height: number): Promise<comet38.BlockResultsResponse> {
    return this.comet.blockResults(height);
  }

  /** A CometBFT RPC result exactly as the node's JSON has it, for documents passed on verbatim (proof bundles). */
  async rpcJson<T>(method: string, params: Record<string, unknown>): Promise<T> {
    const response = await fetch(this.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
      signal: AbortSignal.timeout(5000),
    });
    const body = (await response.json()) as { result?: T; error?: { data?: string; message?: string } };
    if (!body.result) throw new Error(`${method}: ${body.error?.data ?? body.error?.message ?? "no result"}`);
    return body.result;
  }

  disconnect(): void {
    this.comet.disconnect();
  }
}
