// What the debug routes that act for a pod share: the Status body of a failure (the shape the
// control plane answers with: kind Status, status Failure, code, message) and the lookups before
// the work: the node's NetworkInput (503 until the node has registered) and the source pod's netns
// on this node (404 naming why it is not here). A route answers `reply.code(s.code).send(s)`
// for any Status these give (sendStatus).
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Handle } from '../../netlink/handle.js';
import type { NetworkInput } from '../network/types.js';
import type { Agent } from '../agent.js';
import { findPodNetns, noPodMessage } from './pod-netns.js';

export interface Status {
  kind: 'Status';
  status: 'Failure';
  code: number;
  message: string;
}

export const failure = (code: number, message: string): Status => ({ kind: 'Status', status: 'Failure', code, message });

export const isStatus = (x: unknown): x is Status => typeof x === 'object' && x !== null && (x as Status).kind === 'Status';

export function sendStatus(reply: FastifyReply, s: Status): FastifyReply {
  return reply.code(s.code).send(s);
}

export interface PodRouteDeps {
  nodeName: string;
  /** The agent's handle on the node's netns: a pod's netns is only used when its veth peer is here. */
  handle: Handle;
  /** Its NetworkInput: the podCIDR a pod of this node has its IP in. */
  agent: Pick<Agent, 'networkInput'>;
}

/** The node's NetworkInput, or 503: before registration it has no podCIDR and no peers. */
export function registeredInput(deps: Pick<PodRouteDeps, 'nodeName' | 'agent'>): NetworkInput | Status {
  return deps.agent.networkInput() ?? failure(503, `node ${deps.nodeName} has not registered with the control plane yet (no podCIDR); see its agent log, or podwire status`);
}

/** The netns of this node's pod with `srcIp` (the hint tried first), or the Status to answer: 503, 404. */
export function sourcePodNetns(deps: PodRouteDeps, srcIp: string, hint?: string): string | Status {
  const input = registeredInput(deps);
  if (isStatus(input)) return input;
  return findPodNetns({ ip: srcIp, podCidr: input.podCidr, node: deps.handle, ...(hint ? { hint } : {}) }) ?? failure(404, noPodMessage(deps.nodeName, srcIp, input.podCidr, hint));
}

/**
 * A POST route that acts from inside one of this node's pods (ping, connect, the trace probe):
 * the body validated (400 with the validator's message), the source pod's netns found (503, 404),
 * then `run` there; a throw is a 500 starting with `describe(req, netns)`.
 */
export function registerPodRoute<R extends { srcIp: string; netnsHint?: string }, A>(
  app: FastifyInstance,
  path: string,
  deps: PodRouteDeps,
  validate: (body: unknown) => R | string,
  run: (netns: string, req: R) => Promise<A>,
  describe: (req: R, netns: string) => string,
): void {
  app.post(path, async (request, reply) => {
    const req = validate(request.body);
    if (typeof req === 'string') return sendStatus(reply, failure(400, req));
    const netns = sourcePodNetns(deps, req.srcIp, req.netnsHint);
    if (isStatus(netns)) return sendStatus(reply, netns);
    try {
      return await run(netns, req);
    } catch (e) {
      return sendStatus(reply, failure(500, `${describe(req, netns)}: ${(e as Error).message}`));
    }
  });
}
