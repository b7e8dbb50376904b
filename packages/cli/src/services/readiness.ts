import { OperationFailed } from "./operation.js";
import type { DeploymentServices } from "./deployment-services.js";
import { anyRunning } from "./controller.js";

export interface Serving {
  chainId: string;
  height: number;
  apiStatus: string;
}

/**
 * Waits until the services serve (ops.md §6 step 9): the API's /health answers 200, the node's
 * height reaches `minHeight` and then advances, and the node, the API and `.env` name one chain.
 * A part that exits meanwhile fails at once, with the end of its log.
 */
export async function waitUntilServing(
  services: DeploymentServices,
  options: { chainId: string; minHeight: number; timeoutMs: number },
): Promise<Serving> {
  const { endpoints, controller, env } = services;
  const deadline = Date.now() + options.timeoutMs;
  let seen: number | undefined;
  let last = "nothing answered yet";
  while (Date.now() < deadline) {
    const [health, node] = await Promise.all([endpoints.health(), endpoints.nodeStatus()]);
    if (node && node.chainId !== options.chainId) throw new OperationFailed(`the node runs chain ${node.chainId}, not ${options.chainId}`);
    if (health && health.body.chainId !== options.chainId)
      throw new OperationFailed(`the API runs chain ${health.body.chainId}, not ${options.chainId}`);
    if (env.CHAIN_ID !== options.chainId) throw new OperationFailed(`.env says CHAIN_ID=${env.CHAIN_ID}, not ${options.chainId}`);
    if (health?.httpStatus === 200 && node && node.height >= options.minHeight) {
      if (seen !== undefined && node.height > seen) return { chainId: node.chainId, height: node.height, apiStatus: health.body.status };
      seen ??= node.height;
    }
    last = `API ${health ? `${health.httpStatus} ${health.body.status}` : "not answering"}, node ${node ? `height ${node.height}` : "not answering"}`;
    if (!health && !node && controller.kind === "process" && !(await anyRunning(controller))) {
      throw new OperationFailed(`the services exited while starting:\n${await controller.logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new OperationFailed(`the services did not come up in ${Math.round(options.timeoutMs / 1000)} s (${last})`);
}
