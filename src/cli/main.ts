#!/usr/bin/env node
// `podwire`: the command-line interface.
import { labCommand, LAB_USAGE } from './lab.js';
import { API_COMMANDS, API_USAGE, describeError } from './api.js';
import { statusCommand, STATUS_USAGE } from './status.js';
import { pingCommand, PING_USAGE } from './ping.js';
import { peersCommand, PEERS_USAGE } from './peers.js';
import { connectivityCommand, CONNECTIVITY_USAGE } from './connectivity.js';
import { doctorCommand, DOCTOR_USAGE } from './doctor.js';
import { explainCommand, EXPLAIN_USAGE } from './explain.js';
import { servicesCommand, SERVICES_USAGE } from './services.js';
import { traceCommand, TRACE_USAGE } from './trace.js';
import { EXIT, UnreachableError } from './debug/output.js';
import { UsageError } from '../flags/flags.js';
import { VERSION } from '../version.js';

const USAGE = `podwire ${VERSION}: a Kubernetes-style pod network for Linux nodes

usage: podwire <command> [args]

commands:
  get       list or show nodes, pods, services, endpoints, the clusterconfig
  apply     create or update objects from a YAML / JSON manifest
  delete    delete objects by name or from a manifest
  token     create or revoke node tokens
  status    control plane, nodes and their agents: last sync, errors, out of sync (network debugging)
  peers     each node's peers: desired vs present route, neighbour, FDB entry (routes: the routes only)
  ping      ICMP echo from inside a pod's netns to a pod, node, service IP or IP: RTT and loss
  explain   the path of one packet SRC → DST[:PORT/PROTO], hop by hop from live state (where it breaks and why)
  trace     sends one probe SRC → DST:PORT[/PROTO] and traces it with nftables on every node: each rule it hit, the DNAT's backend
  services  each service's IPs, ports and endpoints with the connections DNATed to each (live ruleset counters)
  connectivity  the pod ↔ pod (--services: pod → service) matrix across all nodes, from inside each pod's netns
  doctor    checks each node (sysctls, MTUs, routes, nftables, CNI configs, IPAM) and says how to fix what it finds
  lab       build / remove a multi-node netns lab cluster on this machine
  version   print the version

The API commands find the server in --server / --token (or --token-file), else PODWIRE_SERVER /
PODWIRE_TOKEN, else the config file (--config, $PODWIRE_CONFIG, ~/.config/podwire/config.json):
  {"server": "http://127.0.0.1:6443", "token": "..." | "tokenFile": "...", "caFile": "..."}

${API_USAGE}

${STATUS_USAGE}

${PING_USAGE}

${PEERS_USAGE}

${DOCTOR_USAGE}

${EXPLAIN_USAGE}

${SERVICES_USAGE}

${TRACE_USAGE}

${CONNECTIVITY_USAGE}

${LAB_USAGE}`;

/** `podwire CMD --help` / `-h` of a debugging command: its own usage, exit 0. */
const DEBUG_USAGE: Record<string, string> = {
  status: STATUS_USAGE, peers: PEERS_USAGE, routes: PEERS_USAGE, ping: PING_USAGE, explain: EXPLAIN_USAGE, trace: TRACE_USAGE,
  connectivity: CONNECTIVITY_USAGE, doctor: DOCTOR_USAGE, services: SERVICES_USAGE,
};

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd !== undefined && Object.hasOwn(DEBUG_USAGE, cmd) && (rest[0] === '--help' || rest[0] === '-h')) {
    console.log(DEBUG_USAGE[cmd]);
    return 0;
  }
  const api = cmd !== undefined && Object.hasOwn(API_COMMANDS, cmd) ? API_COMMANDS[cmd] : undefined;
  if (api) return api(rest);
  switch (cmd) {
    case 'status':
      return statusCommand(rest);
    case 'peers':
    case 'routes':
      return peersCommand(rest, cmd);
    case 'ping':
      return pingCommand(rest);
    case 'explain':
      return explainCommand(rest);
    case 'trace':
      return traceCommand(rest);
    case 'services':
      return servicesCommand(rest);
    case 'connectivity':
      return connectivityCommand(rest);
    case 'doctor':
      return doctorCommand(rest);
    case 'lab':
      return labCommand(rest);
    case 'version':
    case '--version':
      console.log(VERSION);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      throw new UsageError(cmd ? `unknown command ${JSON.stringify(cmd)}; see podwire help` : USAGE);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`podwire: ${describeError(err)}\n`);
    process.exit(err instanceof UsageError ? EXIT.USAGE : err instanceof UnreachableError ? EXIT.UNREACHABLE : EXIT.PROBLEM);
  },
);
