import { AjvCompiler } from "@fastify/ajv-compiler";
import cors from "@fastify/cors";
import helmet from "@fastify/helmet";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import Fastify, { type FastifyError, type FastifyReply } from "fastify";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { maxHeaderSize } from "node:http";
import type { ApiConfig } from "../config/config.js";
import { ApiError, envelope, validationError } from "./errors.js";
import { type RateLimitCounters, rateLimitStore } from "./rate-limit-store.js";

declare module "fastify" {
  interface FastifyInstance {
    /** The rate-limit counters (@fastify/rate-limit's store), for routes that take several units at once. */
    rateLimits: RateLimitCounters;
  }
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
const JSON_BODY_LIMIT = 1024 * 1024;

/** Errors that mean the database is unreachable rather than that the request was wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string };
  return (
    ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "57P01", "57P02", "57P03", "08000", "08001", "08003", "08006"].includes(e?.code ?? "") ||
    /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|ECONNREFUSED/i.test(
      e?.message ?? "",
    )
  );
}

/** Validators that coerce types everywhere but in JSON bodies (`{"content": 123}` is not the text "123"). */
const strictBodies: BuildValidator = (externalSchemas, options) => {
  const coercing = AjvCompiler()(externalSchemas, options);
  const strict = AjvCompiler()(externalSchemas, {
    ...options,
    customOptions: { ...(options as { customOptions?: object })?.customOptions, coerceTypes: false },
  } as typeof options);
  return (route) => (route.httpPart === "body" ? strict : coercing)(route);
};

type BuildValidator = ReturnType<typeof AjvCompiler>;

/** The Fastify instance with the API's cross-cutting behaviour; features register as plugins. */
export async function createHttpApp(config: ApiConfig, logger: Logger, redis: Redis | undefined) {
  const app = Fastify({
    loggerInstance: logger,
    bodyLimit: JSON_BODY_LIMIT,
    trustProxy: config.TRUST_PROXY.split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", allErrors: true } },
    // Query strings and params are text, so they are coerced ("20" → 20); a JSON body has real types and a wrong one is refused.
    schemaController: { compilersFactory: { buildValidator: strictBodies } },
    routerOptions: { maxParamLength: 256 },
    // A client that never finishes sending its request gives up its connection (slow-loris).
    requestTimeout: 30_000,
    // Node would answer a missing Host with an empty 400; the onRequest hook below refuses it with the envelope.
    http: { requireHostHeader: false },
    // URLs the router refuses (bad percent-encoding, over-long parameters) get the envelope, not Fastify's own body.
    frameworkErrors: (error, request, reply: FastifyReply) => {
      const message = error.code === "FST_ERR_MAX_PARAM_LENGTH" ? "a path parameter is too long" : "is not a valid URL";
      reply
        .header("X-Request-Id", request.id)
        .code(400)
        .send(envelope("VALIDATION_ERROR", `url: ${message}`, request.id, { fields: [{ field: "url", message }] }));
    },
    // Requests Node's HTTP parser refuses (bad framing, headers over the limit) get the envelope too.
    clientErrorHandler: (error, socket) => {
      const code = (error as { code?: string }).code;
      if (code === "ECONNRESET" || socket.destroyed) return;
      logger.trace({ err: error }, "client error");
      const overflow = code === "HPE_HEADER_OVERFLOW";
      const timeout = code === "ERR_HTTP_REQUEST_TIMEOUT";
      const [status, reason] = overflow
        ? [431, "Request Header Fields Too Large"]
        : timeout
          ? [408, "Request Timeout"]
          : [400, "Bad Request"];
      const message = timeout ? "was not received in time" : "is not valid HTTP";
      const body = JSON.stringify(
        overflow
          ? envelope("PAYLOAD_TOO_LARGE", "the request headers are too large", crypto.randomUUID(), { limit: maxHeaderSize })
          : envelope("VALIDATION_ERROR", `the request ${message}`, crypto.randomUUID(), { fields: [{ field: "request", message }] }),
      );
      // Never in the middle of a response already being written on this connection.
      const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
      if (socket.writable && !inFlight?.headersSent) {
        socket.write(
          `HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy();
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // JSON, and raw bytes for files; any other type is refused with 415.
  app.removeContentTypeParser("text/plain");
  app.addContentTypeParser("application/octet-stream", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
  // Node answers an Expect it cannot meet with an empty 417; this one carries the envelope.
  app.server.on("checkExpectation", (request, response) => {
    const given = request.headers["x-request-id"];
    const requestId = typeof given === "string" && REQUEST_ID.test(given) ? given : crypto.randomUUID();
    const body = JSON.stringify(
      envelope("VALIDATION_ERROR", "expect: only 100-continue is supported", requestId, {
        fields: [{ field: "headers.expect", message: "only 100-continue is supported" }],
      }),
    );
    response
      .writeHead(417, {
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": Buffer.byteLength(body),
        "X-Request-Id": requestId,
      })
      .end(body);
  });
  app.addHook("onRequest", async (request, reply) => {
    reply.header("X-Request-Id", request.id);
    // The asterisk form names no resource (it would otherwise reach the portal's "/").
    if (request.raw.url === "*") throw new ApiError(404, "NOT_FOUND", "no route for *");
    if (request.raw.httpVersion === "1.1" && request.headers.host === undefined) {
      throw validationError([{ field: "headers.host", message: "is required in HTTP/1.1" }]);
    }
    // An OPTIONS request that is no CORS preflight has no route (@fastify/cors would answer it in plain text).
    if (request.method === "OPTIONS" && (!request.headers.origin || !request.headers["access-control-request-method"])) {
      throw new ApiError(404, "NOT_FOUND", `no route OPTIONS ${request.url.split("?")[0].slice(0, 200)}`);
    }
  });

  // Set before any plugin registers routes: Fastify binds a route to the error handler current at its registration.
  app.setErrorHandler((error: FastifyError | ApiError, request, reply) => {
    if (error instanceof ApiError) {
      reply.headers(error.headers);
      if (error.statusCode === 429) reply.header("Retry-After", error.headers["Retry-After"] ?? "60");
      return reply.code(error.statusCode).send(envelope(error.code, error.message, request.id, error.details));
    }
    if ((error as FastifyError).validation) {
      const where = (error as FastifyError).validationContext ?? "body";
      const fields = (error as FastifyError).validation!.map((v) => {
        const missing = (v.params as { missingProperty?: string })?.missingProperty;
        const path = [where, ...v.instancePath.split("/").filter(Boolean), ...(missing ? [missing] : [])].join(".");
        return { field: path, message: v.message ?? "is invalid" };
      });
      return reply
        .code(400)
        .send(envelope("VALIDATION_ERROR", fields.map((f) => `${f.field} ${f.message}`).join("; "), request.id, { fields }));
    }
    const code = (error as FastifyError).code;
    if (code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return reply.code(413).send(
        envelope("PAYLOAD_TOO_LARGE", "the request body is too large", request.id, {
          limit: reply.routeOptions.bodyLimit ?? JSON_BODY_LIMIT,
        }),
      );
    }
    if (code === "FST_ERR_CTP_INVALID_MEDIA_TYPE")
      return reply
        .code(415)
        .send(envelope("UNSUPPORTED_MEDIA_TYPE", "send application/json or, for files, application/octet-stream", request.id));
    if (code === "FST_ERR_CTP_EMPTY_JSON_BODY" || code === "FST_ERR_CTP_INVALID_JSON_BODY" || error instanceof SyntaxError) {
      return reply.code(400).send(envelope("MALFORMED_JSON", "the body is not valid JSON", request.id));
    }
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, "database unavailable");
      return reply
        .code(503)
        .header("Retry-After", "5")
        .send(envelope("SERVICE_UNAVAILABLE", "the database is unavailable; try again shortly", request.id, { dependency: "database" }));
    }
    const status = (error as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      if (status === 415) return reply.code(415).send(envelope("UNSUPPORTED_MEDIA_TYPE", "the request could not be read", request.id));
      return reply.code(status).send(
        envelope("VALIDATION_ERROR", "the request could not be read", request.id, {
          fields: [{ field: "body", message: "could not be read (length or encoding does not match)" }],
        }),
      );
    }
    request.log.error({ err: error }, "request failed");
    return reply.code(500).send(envelope("INTERNAL_ERROR", "something went wrong; the request id identifies it in the logs", request.id));
  });

  await app.register(helmet, {
    // Only what the API's own pages need; no upgrade-insecure-requests, so /docs also works over plain http.
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", "data:"],
        frameAncestors: ["'none'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
      },
    },
    frameguard: { action: "deny" },
    referrerPolicy: { policy: "no-referrer" },
    hsts: config.NODE_ENV === "production" ? { maxAge: 31_536_000, includeSubDomains: true } : false,
    crossOriginEmbedderPolicy: false,
  });
  const origins = config.ALLOWED_ORIGINS.split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  await app.register(cors, {
    origin: origins,
    credentials: false,
    exposedHeaders: [
      "X-Request-Id",
      "Retry-After",
      "RateLimit-Limit",
      "RateLimit-Remaining",
      "RateLimit-Reset",
      ...["Limit", "Remaining", "Reset"].flatMap((name) => [`X-RateLimit-${name}-Hourly`, `X-RateLimit-${name}-Daily`]),
    ],
  });
  // Keys are per chain: every instance of one deployment shares them, another deployment on the same Redis does not.
  const RateLimits = rateLimitStore(
    redis,
    (error) => logger.warn({ err: error }, "rate limits fall back to memory: Redis unavailable"),
    `daon:rl:${config.CHAIN_ID}:`,
  );
  // Routes that charge several units per request (bulk protect) take them from the same counters.
  app.decorate("rateLimits", new RateLimits());
  await app.register(rateLimit, {
    global: true,
    max: config.RATE_LIMIT_MAX,
    timeWindow: config.RATE_LIMIT_WINDOW_MS,
    store: RateLimits,
    // Requests with a load-test key count against that key's own quota instead (ops.md §4; set by authenticate, which runs first).
    // Platform keys have quotas instead (api.md §7): resolved by authenticate()'s onRequest hook, which runs first.
    allowList: (request) => !request.url.startsWith("/api/v1") || request.testTraffic !== undefined || request.caller?.kind === "platform",
    enableDraftSpec: true,
    errorResponseBuilder: (_request, context) =>
      new ApiError(
        429,
        "RATE_LIMITED",
        `too many requests; retry in ${Math.ceil(context.ttl / 1000)} s`,
        { limit: context.max },
        { "Retry-After": String(Math.ceil(context.ttl / 1000)) },
      ),
  });
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "DAON API",
        version: "1",
        description: "Register creative works on the DAON ledger and prove who registered them first.",
      },
      tags: [{ name: "content" }, { name: "operations" }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs", uiConfig: { deepLinking: false } });
  app.get("/api/v1/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send(envelope("NOT_FOUND", `no route ${request.method} ${request.url.split("?")[0].slice(0, 200)}`, request.id));
  });

  return app;
}

export type HttpApp = Awaited<ReturnType<typeof createHttpApp>>;
