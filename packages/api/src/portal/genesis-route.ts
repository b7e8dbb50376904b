import type { FastifyPluginAsyncTypebox } from "@fastify/type-provider-typebox";
import { Type } from "typebox";
import { unavailable } from "../http/errors.js";
import type { LedgerClient } from "../ledger/ledger-client.js";

interface GenesisDocument {
  genesis_time: string;
  chain_id: string;
  validators: { address: string; pub_key: { type: string; value: string }; power: string; name: string }[];
}

const Validator = Type.Object({
  address: Type.String(),
  pub_key: Type.Object({ type: Type.String(), value: Type.String() }),
  power: Type.String(),
  name: Type.String(),
});

/**
 * `GET /api/v1/chain/genesis-validators`: the validator keys the chain's genesis names, the
 * trust anchor against which the portal (and anyone) checks proof bundles offline. Read once
 * from the node's `/genesis` (it never changes) and kept.
 */
export const genesisRoute: FastifyPluginAsyncTypebox<{ ledger: LedgerClient; chainId: string }> = async (app, { ledger, chainId }) => {
  let known: { chainId: string; genesisTime: string; validators: GenesisDocument["validators"] } | undefined;
  app.get(
    "/api/v1/chain/genesis-validators",
    {
      schema: {
        summary: "The chain's genesis validators: what proof bundles are checked against",
        tags: ["content"],
        response: {
          200: Type.Object({
            success: Type.Boolean(),
            chainId: Type.String(),
            genesisTime: Type.String(),
            validators: Type.Array(Validator),
          }),
        },
      },
    },
    async (request, reply) => {
      if (!known) {
        try {
          const { genesis } = await ledger.rpcJson<{ genesis: GenesisDocument }>("genesis", {});
          // A node of another chain is no trust anchor for this one.
          if (genesis.chain_id !== chainId) throw new Error(`the node's genesis is for ${genesis.chain_id}`);
          known = {
            chainId: genesis.chain_id,
            genesisTime: genesis.genesis_time,
            validators: genesis.validators.map(({ address, pub_key, power, name }) => ({ address, pub_key, power, name })),
          };
        } catch (error) {
          request.log.warn({ err: error }, "genesis validators: ledger unavailable");
          throw unavailable("ledger");
        }
      }
      reply.header("Cache-Control", "public, max-age=3600");
      return { success: true, ...known };
    },
  );
};
