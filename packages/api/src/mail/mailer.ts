import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import nodemailer from "nodemailer";
import type { Logger } from "pino";

export interface Mail {
  to: string;
  subject: string;
  text: string;
}

/** Sends the API's mail; throws MailUnavailable when the mail cannot leave. */
export interface Mailer {
  send(mail: Mail): Promise<void>;
  close(): void;
}

export class MailUnavailable extends Error {}

export interface MailerOptions {
  /** `smtp://` or `smtps://` URL; absent = the embedded default, mail as files. */
  smtpUrl?: string;
  from: string;
  stateDir: string;
  logger: Logger;
}

const SMTP_TIMEOUTS = { connectionTimeout: 5000, greetingTimeout: 5000, socketTimeout: 10_000 };

/**
 * Through SMTP when SMTP_URL is set; else (embedded default) each mail becomes a file
 * under `<state>/mail/` whose path is logged, so a developer can open the link. The log
 * never carries the recipient or the body: a magic link is a credential.
 */
export function createMailer(options: MailerOptions): Mailer {
  const { logger } = options;
  if (options.smtpUrl) {
    const transport = nodemailer.createTransport({ url: options.smtpUrl, ...SMTP_TIMEOUTS });
    return {
      async send(mail) {
        try {
          await transport.sendMail({ from: options.from, ...mail });
        } catch (error) {
          // Only the error's code: SMTP replies may quote the recipient.
          const e = error as { code?: string; responseCode?: number };
          logger.warn({ code: e.code, responseCode: e.responseCode }, "mail could not be sent");
          throw new MailUnavailable("the mail server did not accept the message");
        }
      },
      close: () => transport.close(),
    };
  }
  const directory = join(options.stateDir, "mail");
  const writer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  return {
    async send(mail) {
      try {
        const { message } = await writer.sendMail({ from: options.from, ...mail });
        await mkdir(directory, { recursive: true, mode: 0o700 });
        const file = join(directory, `${new Date().toISOString().replace(/[:.]/g, "-")}-${randomBytes(4).toString("hex")}.eml`);
        await writeFile(file, message as Buffer, { mode: 0o600 });
        logger.info({ file }, "mail written (no SMTP_URL set)");
      } catch (error) {
        logger.warn({ code: (error as { code?: string }).code }, "mail could not be written");
        throw new MailUnavailable("the mail could not be written");
      }
    },
    close: () => writer.close(),
  };
}
