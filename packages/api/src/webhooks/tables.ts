/** This concept's tables, merged into db/schema.ts's Database. */
// biome-ignore lint/suspicious/noEmptyInterface: filled as the concept's tables are added
export interface WebhookTables {}
