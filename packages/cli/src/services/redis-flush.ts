import { createConnection } from "node:net";

/** The Redis database index a `redis://` URL selects (`/n`, default 0). */
export function redisDbIndex(url: string): number {
  const path = new URL(url).pathname.replace(/^\//, "");
  return path === "" ? 0 : Number(path);
}

/**
 * `FLUSHDB` of the DAON database index only (ops.md §0: never another index, never FLUSHALL):
 * AUTH with the URL's credentials, SELECT its index, FLUSHDB. Plain RESP over TCP.
 */
export async function flushRedisDb(url: string, timeoutMs = 5000): Promise<void> {
  const parsed = new URL(url);
  if (parsed.protocol !== "redis:") throw new Error(`only redis:// URLs are supported, not ${parsed.protocol}`);
  const commands: string[][] = [];
  const password = decodeURIComponent(parsed.password);
  if (password) commands.push(parsed.username ? ["AUTH", decodeURIComponent(parsed.username), password] : ["AUTH", password]);
  commands.push(["SELECT", String(redisDbIndex(url))], ["FLUSHDB"]);
  const encode = (args: string[]) => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join("")}`;

  await new Promise<void>((resolve, reject) => {
    const socket = createConnection({ host: parsed.hostname || "127.0.0.1", port: Number(parsed.port || 6379) });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`redis at ${parsed.host} did not answer in ${timeoutMs} ms`)));
    let buffered = "";
    let answered = 0;
    socket.setEncoding("utf8");
    socket.on("connect", () => socket.write(commands.map(encode).join("")));
    socket.on("data", (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf("\r\n"); end >= 0; end = buffered.indexOf("\r\n")) {
        const line = buffered.slice(0, end);
        buffered = buffered.slice(end + 2);
        if (line.startsWith("-")) {
          socket.destroy();
          // The command, never its arguments (AUTH carries the password).
          return reject(new Error(`redis refused ${commands[answered][0]}: ${line.slice(1)}`));
        }
        answered += 1;
        if (answered === commands.length) {
          socket.end();
          return resolve();
        }
      }
    });
    socket.on("error", reject);
  });
}
