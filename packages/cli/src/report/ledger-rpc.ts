import { Agent, request } from "undici";

/** A transaction as the report counts it: where it is and what its messages do. */
export interface LedgerTx {
  height: number;
  hash: string;
  actions: string[];
}

const REGISTER = "/daoncore.contentregistry.v1.MsgRegisterContent";
const HEIGHTS_PER_SEARCH = 500;
const PER_PAGE = 100;
const PARALLEL = 6;

/** What the report asks the ledger node, over its CometBFT JSON-RPC (GET with query parameters). */
export class LedgerRpc {
  readonly #agent = new Agent({ keepAliveTimeout: 2000, connections: PARALLEL });

  constructor(private readonly base: string) {}

  async call<T>(method: string, params: Record<string, string | number> = {}): Promise<T> {
    const query = new URLSearchParams(Object.entries(params).map(([k, v]) => [k, String(v)])).toString();
    const response = await request(`${this.base.replace(/\/$/, "")}/${method}${query ? `?${query}` : ""}`, {
      dispatcher: this.#agent,
      signal: AbortSignal.timeout(30_000),
    });
    const body = (await response.body.json()) as { result?: T; error?: { message?: string; data?: string } };
    if (body.error || body.result === undefined) {
      throw new Error(`${method}: ${body.error?.data ?? body.error?.message ?? `HTTP ${response.statusCode}`}`);
    }
    return body.result;
  }

  async latest(): Promise<{ height: number; time: Date }> {
    const status = await this.call<{ sync_info: { latest_block_height: string; latest_block_time: string } }>("status");
    return { height: Number(status.sync_info.latest_block_height), time: new Date(status.sync_info.latest_block_time) };
  }

  async genesisTime(): Promise<Date> {
    const result = await this.call<{ genesis: { genesis_time: string } }>("genesis");
    return new Date(result.genesis.genesis_time);
  }

  /** Header times of heights from..to (inclusive), 20 a call as `blockchain` gives them. */
  async blockTimes(from: number, to: number, onProgress?: (done: number) => void): Promise<Map<number, number>> {
    const times = new Map<number, number>();
    const ranges: [number, number][] = [];
    for (let low = from; low <= to; low += 20) ranges.push([low, Math.min(low + 19, to)]);
    let next = 0;
    const worker = async () => {
      while (next < ranges.length) {
        const [low, high] = ranges[next++];
        const result = await this.call<{ block_metas: { header: { height: string; time: string } }[] }>("blockchain", {
          minHeight: low,
          maxHeight: high,
        });
        for (const meta of result.block_metas) times.set(Number(meta.header.height), Date.parse(meta.header.time));
        onProgress?.(times.size);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, ranges.length) }, worker));
    return times;
  }

  /** The first height whose block time is at or after `at` (latest + 1 if none). */
  async firstHeightAtOrAfter(at: Date, latest: number): Promise<number> {
    let low = 1;
    let high = latest + 1;
    while (low < high) {
      const middle = Math.floor((low + high) / 2);
      const time = (await this.blockTimes(middle, middle)).get(middle)!;
      if (time >= at.getTime()) high = middle;
      else low = middle + 1;
    }
    return low;
  }

  /** Every tx in heights from..to (`tx_search` in slices of heights, page by page). */
  async txs(from: number, to: number): Promise<LedgerTx[]> {
    const found: LedgerTx[] = [];
    for (let low = from; low <= to; low += HEIGHTS_PER_SEARCH) {
      const high = Math.min(low + HEIGHTS_PER_SEARCH - 1, to);
      for (let page = 1; ; page++) {
        const result = await this.call<{
          txs: { hash: string; height: string; tx_result: { events: { type: string; attributes: { key: string; value: string }[] }[] } }[];
          total_count: string;
        }>("tx_search", { query: `"tx.height>=${low} AND tx.height<=${high}"`, page, per_page: PER_PAGE, order_by: '"asc"' });
        for (const tx of result.txs) {
          const actions = tx.tx_result.events
            .filter((event) => event.type === "message")
            .flatMap((event) => event.attributes.filter((a) => a.key === "action").map((a) => a.value));
          found.push({ height: Number(tx.height), hash: tx.hash, actions });
        }
        if (page * PER_PAGE >= Number(result.total_count) || result.txs.length === 0) break;
      }
    }
    return found;
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** A tx our batcher made for registrations only (no transfers or other messages). */
export const registersOnly = (tx: LedgerTx) => tx.actions.length > 0 && tx.actions.every((action) => action === REGISTER);
