// GET /v1/debug/peers: every peer of this node with its desired route, neighbour and FDB entry
// next to what the kernel has now (peer-diff.ts). Read-only: the desired side is the input the next
// sync would use (Agent.networkInput, not recorded), the kernel side one observeNetwork() dump.
import type { FastifyInstance } from 'fastify';
import { desiredNetwork } from '../network/desired.js';
import { observeNetwork } from '../network/observe.js';
import { peerDiff } from './peer-diff.js';
import type { Agent } from '../agent.js';
import type { Handle } from '../../netlink/handle.js';

/** What the route needs of routes.ts DebugDeps (not imported: routes.ts imports this file). */
export interface PeerRouteDeps {
  nodeName: string;
  agent: Pick<Agent, 'networkInput'>;
  handle: Handle;
}

export function registerPeerRoutes(app: FastifyInstance, deps: PeerRouteDeps): void {
  app.get('/v1/debug/peers', async (_req, reply) => {
    const input = deps.agent.networkInput();
    if (!input) {
      return reply.code(503).send({ kind: 'Status', status: 'Failure', code: 503, message: `node ${deps.nodeName} has not registered with the control plane yet (no podCIDR); see its agent log, or podwire status` });
    }
    return peerDiff(input, desiredNetwork(input), observeNetwork(deps.handle));
  });
}
