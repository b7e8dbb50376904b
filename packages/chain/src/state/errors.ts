/** A refusal with the code clients see in CheckTx / DeliverTx results; codes are stable. */
export class TxError extends Error {
  constructor(
    readonly codespace: string,
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

// Cosmos SDK's codes, where the SDK has one for the case, so SDK-aware clients read them alike.
export const sdk = {
  txDecode: (m: string) => new TxError("sdk", 2, m),
  unauthorized: (m: string) => new TxError("sdk", 4, m),
  unknownRequest: (m: string) => new TxError("sdk", 6, m),
  invalidPubKey: (m: string) => new TxError("sdk", 8, m),
  unknownAddress: (m: string) => new TxError("sdk", 9, m),
  outOfGas: (m: string) => new TxError("sdk", 11, m),
  memoTooLarge: (m: string) => new TxError("sdk", 12, m),
  invalidRequest: (m: string) => new TxError("sdk", 18, m),
  mempoolIsFull: (m: string) => new TxError("sdk", 20, m),
  txTooLarge: (m: string) => new TxError("sdk", 21, m),
  invalidChainId: (m: string) => new TxError("sdk", 28, m),
  txTimeoutHeight: (m: string) => new TxError("sdk", 30, m),
  wrongSequence: (m: string) => new TxError("sdk", 32, m),
  invalidGasLimit: (m: string) => new TxError("sdk", 41, m),
};

export const registry = {
  invalidHash: (m: string) => new TxError("contentregistry", 2, m),
  alreadyExists: (m: string) => new TxError("contentregistry", 3, m),
  notFound: (m: string) => new TxError("contentregistry", 4, m),
  notAuthorized: (m: string) => new TxError("contentregistry", 5, m),
  invalidLicense: (m: string) => new TxError("contentregistry", 6, m),
  invalidPolicy: (m: string) => new TxError("contentregistry", 7, m),
  invalidField: (m: string) => new TxError("contentregistry", 8, m),
};
