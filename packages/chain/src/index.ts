export { adminSocketPath, snapshotLedgerHome } from "./admin/admin-socket.js";
export { inspectLedgerHome, type LedgerInspection, type LedgerSnapshot } from "./admin/ledger-snapshot.js";
export { defaultConfig, type NodeConfig, parseDuration } from "./home/config.js";
export { type Genesis, isChainId } from "./home/genesis.js";
export { homePaths, initHome, isHomeInitialised, type LoadedHome, loadHome, writeFileAtomic } from "./home/home.js";
export { LedgerService, parseListen } from "./ledger-service.js";
export { LedgerNode } from "./node.js";
