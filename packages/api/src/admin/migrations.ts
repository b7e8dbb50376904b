import { type Kysely, type Migration, sql } from "kysely";

/** The admin audit log's part of the schema's history (after the platforms it records changes to). */
export const adminMigrations: Record<string, Migration> = {
  "0003_platforms_admin_audit_log": {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("admin_audit_log")
        .addColumn("seq", "bigserial", (c) => c.primaryKey())
        .addColumn("id", "text", (c) => c.notNull().unique())
        .addColumn("at", "timestamptz", (c) => c.notNull())
        .addColumn("actor_id", "text", (c) => c.notNull())
        .addColumn("action", "text", (c) => c.notNull())
        .addColumn("target_type", "text", (c) => c.notNull())
        .addColumn("target_id", "text", (c) => c.notNull())
        .addColumn("details", "jsonb", (c) => c.notNull())
        .addColumn("ip", "text")
        .addColumn("request_id", "text")
        .execute();
      await db.schema.createIndex("admin_audit_log_target").on("admin_audit_log").columns(["target_id", "seq"]).execute();
      await db.schema.createIndex("admin_audit_log_action").on("admin_audit_log").columns(["action", "seq"]).execute();
      // Append-only in the database itself, not only by convention: updates and deletes fail.
      await sql`
        create function admin_audit_log_append_only() returns trigger language plpgsql as $$
        begin
          raise exception 'the admin audit log is append-only';
        end;
        $$`.execute(db);
      await sql`
        create trigger admin_audit_log_append_only before update or delete on admin_audit_log
        for each row execute function admin_audit_log_append_only()`.execute(db);
    },
  },
};
