export { ApiService, type ApiServiceOptions } from "./api-service.js";
export { type ApiConfig, ConfigError, loadConfig } from "./config/config.js";
