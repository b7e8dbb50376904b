import { createHash } from "node:crypto";
import { readFile, stat } from "node:fs/promises";
import { extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../http/errors.js";

export interface PortalRoutesOptions {
  /** The built portal (`packages/web/dist`): index.html, assets/ with content-hashed names. */
  dir?: string;
}

/** Where `npm run build -w @daon/web` writes the portal, relative to this file. */
export const DEFAULT_PORTAL_DIR = fileURLToPath(new URL("../../../web/dist", import.meta.url));

/** The portal's client-side routes: each answers index.html, and the portal's router shows the page. */
const PORTAL_ROUTES = ["/", "/protect", "/verify", "/verify/*", "/status", "/sign-in", "/auth/verify", "/account", "/console", "/admin"];

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".woff2": "font/woff2",
};
/** Files at the portal's root with stable names: the icon, and the badge embedded on other sites. */
const TOP_LEVEL_FILES = ["favicon.svg", "badge.svg"];
const COMPRESSIBLE = new Set([".html", ".js", ".css", ".svg", ".json", ".map", ".txt"]);
// Names the build writes: letters, digits, dots, dashes, underscores; one folder level at most.
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,200}$/;

interface CachedFile {
  mtimeMs: number;
  size: number;
  type: string;
  etag: string;
  identity: Buffer;
  gzip?: Buffer;
  br?: Buffer;
}

/** Shown when the portal was never built, so `/` still says what it is (and the runbook's `grep DAON` holds). */
const UNBUILT_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>DAON</title></head>
<body><main><h1>DAON</h1><p>The DAON API is running. The portal has not been built on this server: run <code>npm run build -w @daon/web</code>, or start with <code>daon up</code>, which builds it.</p>
<p><a href="/docs">API documentation</a> · <a href="/api/v1/stats">Statistics</a> · <a href="/health">Health</a></p></main></body></html>
`;

/**
 * Serves the portal's static files from disk: content-hashed assets cached for a year, the
 * HTML revalidated (ETag), gzip or brotli when the browser takes it, and index.html for the
 * portal's own routes only (API paths keep their JSON 404). The CSP stays helmet's
 * `default-src 'self'`: the portal has no inline script and loads nothing from elsewhere.
 */
export const portalRoutes: FastifyPluginAsyncTypebox<PortalRoutesOptions> = async (app, options) => {
  const dir = resolve(options.dir ?? DEFAULT_PORTAL_DIR);
  const cache = new Map<string, CachedFile>();

  async function load(path: string): Promise<CachedFile | undefined> {
    const info = await stat(path).catch(() => undefined);
    if (!info?.isFile()) return undefined;
    const cached = cache.get(path);
    if (cached && cached.mtimeMs === info.mtimeMs && cached.size === info.size) return cached;
    const identity = await readFile(path);
    const file: CachedFile = {
      mtimeMs: info.mtimeMs,
      size: info.size,
      type: CONTENT_TYPES[extname(path)] ?? "application/octet-stream",
      etag: `"${createHash("sha256").update(identity).digest("base64url").slice(0, 27)}"`,
      identity,
    };
    if (COMPRESSIBLE.has(extname(path)) && identity.length > 512) {
      file.gzip = gzipSync(identity, { level: 9 });
      file.br = brotliCompressSync(identity, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
    }
    cache.set(path, file);
    return file;
  }

  function send(request: FastifyRequest, reply: FastifyReply, file: CachedFile, cacheControl: string) {
    reply
      .header("Content-Type", file.type)
      .header("Cache-Control", cacheControl)
      .header("ETag", file.etag)
      .header("Vary", "Accept-Encoding");
    if (request.headers["if-none-match"] === file.etag) return reply.code(304).send();
    const accepted = String(request.headers["accept-encoding"] ?? "");
    if (file.br && /\bbr\b/.test(accepted)) return reply.header("Content-Encoding", "br").send(file.br);
    if (file.gzip && /\bgzip\b/.test(accepted)) return reply.header("Content-Encoding", "gzip").send(file.gzip);
    return reply.send(file.identity);
  }

  const page = async (request: FastifyRequest, reply: FastifyReply) => {
    const index = await load(join(dir, "index.html"));
    if (!index) return reply.header("Content-Type", "text/html; charset=utf-8").header("Cache-Control", "no-cache").send(UNBUILT_PAGE);
    return send(request, reply, index, "no-cache");
  };
  const hidden = { schema: { hide: true }, config: { rateLimit: false } } as const;
  for (const url of PORTAL_ROUTES) app.get(url, hidden, page);

  async function serveFile(folder: string, name: string, request: FastifyRequest, reply: FastifyReply) {
    const path = resolve(dir, folder, name);
    if (!ASSET_NAME.test(name) || !path.startsWith(dir + sep)) throw new ApiError(404, "NOT_FOUND", "no such portal file");
    const file = await load(path);
    if (!file) throw new ApiError(404, "NOT_FOUND", "no such portal file");
    // Hashed names never change content; other files (the icon) are revalidated.
    return send(request, reply, file, folder === "assets" ? "public, max-age=31536000, immutable" : "no-cache");
  }
  app.get<{ Params: { name: string } }>("/assets/:name", hidden, (request, reply) =>
    serveFile("assets", request.params.name, request, reply),
  );
  for (const name of TOP_LEVEL_FILES) {
    app.get(`/${name}`, hidden, (request, reply) => {
      // The badge is embedded on creators' own sites: helmet's same-origin resource policy would hide it there.
      if (name === "badge.svg") reply.header("Cross-Origin-Resource-Policy", "cross-origin");
      return serveFile("", name, request, reply);
    });
  }
};
