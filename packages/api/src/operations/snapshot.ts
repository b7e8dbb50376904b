import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { OpenDatabase } from "../db/database.js";
import { ApiError } from "../http/errors.js";
import type { RotatingSecret } from "../secrets/keyring.js";
import { requireOpsToken } from "./ops-token.js";
import { tableRows } from "./snapshot-database.js";

export interface SnapshotRouteOptions {
  database: OpenDatabase;
  opsSecrets: () => RotatingSecret;
}

/** Response header with the row count of every table, read at the moment of the dump. */
export const TABLE_ROWS_HEADER = "x-daon-table-rows";

/**
 * `GET /internal/ops/snapshot` (ops.md §5, §13): the embedded database of this running process
 * as `database.pglite.tar.gz`, with every table's row count read in the same moment (no query
 * runs between the counts and the dump). PostgreSQL deployments are dumped with pg_dump instead.
 */
export const snapshotRoute: FastifyPluginAsyncTypebox<SnapshotRouteOptions> = async (app, options) => {
  const { database } = options;
  app.addHook("onRequest", async (request) => requireOpsToken(request, options.opsSecrets()));

  app.get(
    "/internal/ops/snapshot",
    { schema: { hide: true, tags: ["operations"], summary: "The embedded database as a gzipped tar" }, config: { rateLimit: false } },
    async (_request, reply) => {
      const pglite = database.pglite;
      if (!pglite) {
        throw new ApiError(409, "NOT_EMBEDDED", "this API uses PostgreSQL: back it up with pg_dump (daon backup does)", {
          engine: database.engine,
        });
      }
      // Holding Kysely's one PGlite connection keeps every other query out until the dump is taken.
      const { rows, archive } = await database.db.connection().execute(async (connection) => {
        const counted = await tableRows(connection);
        const dumped = await pglite.dumpDataDir("gzip");
        return { rows: counted, archive: Buffer.from(await dumped.arrayBuffer()) };
      });
      return reply
        .header("content-type", "application/gzip")
        .header("content-disposition", 'attachment; filename="database.pglite.tar.gz"')
        .header(TABLE_ROWS_HEADER, JSON.stringify(rows))
        .send(archive);
    },
  );
};
