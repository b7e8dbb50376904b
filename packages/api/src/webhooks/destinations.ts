import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/**
 * Where webhooks may go (api.md §5, SSRF): only public unicast addresses, unless an address
 * is inside one of WEBHOOK_ALLOWED_CIDRS. Loopback, private, unique-local, link-local (the
 * cloud metadata address included), shared (100.64/10), unspecified, multicast, reserved and
 * IPv4-mapped or -embedded forms of them are refused.
 */
export class DestinationPolicy {
  readonly #allowed: [ipaddr.IPv4 | ipaddr.IPv6, number][];

  constructor(
    allowedCidrs: string,
    readonly allowHttp: boolean,
  ) {
    this.#allowed = allowedCidrs
      .split(",")
      .map((cidr) => cidr.trim())
      .filter(Boolean)
      .map((cidr) => {
        if (!ipaddr.isValidCIDR(cidr)) {
          if (!ipaddr.isValid(cidr)) throw new Error(`WEBHOOK_ALLOWED_CIDRS: ${cidr} is not an address or CIDR range`);
          const address = ipaddr.parse(cidr);
          return [address, address.kind() === "ipv4" ? 32 : 128] as [ipaddr.IPv4 | ipaddr.IPv6, number];
        }
        return ipaddr.parseCIDR(cidr);
      });
  }

  /** Why an IP address is refused, or undefined when a webhook may connect to it. */
  refusal(ip: string): string | undefined {
    if (!ipaddr.isValid(ip)) return "is not an IP address";
    const raw = ipaddr.parse(ip);
    // An IPv4-mapped IPv6 address is judged as the IPv4 address it reaches.
    const address = ipaddr.process(ip);
    if (this.#inAllowed(address) || this.#inAllowed(raw)) return undefined;
    const range = address.range();
    return range === "unicast" ? undefined : `resolves to a ${RANGE_NAMES[range] ?? range} address`;
  }

  #inAllowed(address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
    return this.#allowed.some(([range, bits]) => range.kind() === address.kind() && address.match(range, bits));
  }

  /** Why a webhook URL is not acceptable as such (scheme, form), before any lookup. */
  urlProblem(url: string): string | undefined {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return "must be an absolute URL";
    }
    if (parsed.protocol !== "https:" && !(parsed.protocol === "http:" && this.allowHttp)) {
      return this.allowHttp ? "must be an http or https URL" : "must be an https URL";
    }
    if (parsed.username || parsed.password) return "must not contain credentials";
    if (!parsed.hostname) return "must name a host";
    return undefined;
  }

  /**
   * Resolves the URL's host and checks every address it resolves to; throws a
   * DestinationRefused naming the reason. Returns the checked addresses.
   */
  async check(url: string, timeoutMs = 5000): Promise<LookupAddress[]> {
    const problem = this.urlProblem(url);
    if (problem) throw new DestinationRefused(problem);
    const host = hostOf(new URL(url));
    const addresses = await withTimeout(resolveAll(host), timeoutMs).catch((error: NodeJS.ErrnoException) => {
      if (error instanceof DestinationRefused) throw error;
      throw new DestinationRefused(`host does not resolve (${error.code ?? error.message})`);
    });
    for (const { address } of addresses) {
      const refusal = this.refusal(address);
      if (refusal) throw new DestinationRefused(refusal);
    }
    return addresses;
  }

  /**
   * A `lookup` for net/tls.connect (undici's `connect` option): the address a connection is
   * made to is the one checked here, so a host that re-resolves elsewhere between the check
   * and the connect (DNS rebinding) is refused too.
   */
  readonly lookup = (
    hostname: string,
    options: { all?: boolean; family?: number | string },
    callback: (error: Error | null, address: string | LookupAddress[], family?: number) => void,
  ): void => {
    resolveAll(hostname).then(
      (addresses) => {
        const refused = addresses.map((a) => this.refusal(a.address)).find(Boolean);
        if (refused) return callback(new DestinationRefused(refused), "");
        const wanted = options.family === 4 || options.family === 6 ? addresses.filter((a) => a.family === options.family) : addresses;
        if (wanted.length === 0) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: "ENOTFOUND" }), "");
        if (options.all) callback(null, wanted);
        else callback(null, wanted[0].address, wanted[0].family);
      },
      (error: Error) => callback(error, ""),
    );
  };
}

/** A webhook destination refused by the SSRF rules: a validation error at registration, a dead attempt at delivery. */
export class DestinationRefused extends Error {}

const RANGE_NAMES: Record<string, string> = {
  loopback: "loopback",
  private: "private",
  uniqueLocal: "private (unique local)",
  linkLocal: "link-local",
  carrierGradeNat: "shared (100.64/10)",
  unspecified: "unspecified",
  multicast: "multicast",
  broadcast: "broadcast",
  reserved: "reserved",
};

/** The URL's host as a lookup takes it: IPv6 literals without their brackets. */
function hostOf(url: URL): string {
  return url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
}

function resolveAll(host: string): Promise<LookupAddress[]> {
  if (isIP(host)) return Promise.resolve([{ address: host, family: isIP(host) }]);
  return new Promise((resolve, reject) =>
    dnsLookup(host, { all: true, verbatim: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
  );
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error("lookup timed out"), { code: "ETIMEOUT" })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
