/** Where each kind of ledger state lives; these strings are hashed into the app hash, so they never change. */
export const stateKeys = {
  account: (address: string) => `acc/${address}`,
  record: (ledgerContentHash: string) => `cr/${ledgerContentHash}`,
  successor: (address: string) => `succ/${address}`,
  nextAccountNumber: "auth/next_account_number",
  params: "params",
} as const;
