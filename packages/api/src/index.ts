export { ApiService, type ApiServiceOptions } from "./api-service.js";
export { type ApiConfig, CONFIG_NAMES, ConfigError, loadConfig } from "./config/config.js";
export { type OpenDatabase, openDatabase } from "./db/database.js";
export { pendingMigrations } from "./db/migrations.js";
export { Confirmations } from "./ledger/confirmations.js";
export { Indexer } from "./ledger/indexer.js";
export { LedgerClient } from "./ledger/ledger-client.js";
export { queueContentConfirmed } from "./webhooks/events.js";
export { ShutdownTimeout } from "./api-service.js";
export { opsToken } from "./operations/ops-token.js";
export { TABLE_ROWS_HEADER } from "./operations/snapshot.js";
export {
  dumpEmbeddedDirectory,
  emptyPostgresSchema,
  exportPostgresSnapshot,
  migrateOpsDatabase,
  type OpsDatabase,
  openOpsDatabase,
  reconcileWithLedger,
  tableRows,
} from "./operations/snapshot-database.js";
export { describeSettings, isSecretSetting, Keyring, KEYRING_NAMES, urlPassword } from "./secrets/keyring.js";
export { fingerprint, PRODUCTION_SECRETS, productionSecretProblems, secretWeakness } from "./secrets/strength.js";
