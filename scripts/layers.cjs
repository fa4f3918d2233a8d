// The layers of src/, bottom first: each folder may import only the folders listed for it, and
// every folder listed comes earlier in this list than the importer, so imports point down (the
// layering test checks that too). The order follows ../shared/DESIGN.md: IP math, API types and
// the system bindings at the bottom, the daemons and the CLI at the top. Used by
// .dependency-cruiser.cjs and test/unit/layering.test.ts. The agent imports cni for the CNI fast path
// (it runs the plugin's own commands for the native client, src/agent/cni-server.ts).
const MAY_IMPORT = {
  version: [],
  sys: [],
  net: [],
  flags: [],
  http: [],
  api: ['net'],
  netns: ['sys'],
  netlink: ['net', 'netns', 'sys'],
  exec: ['net'],
  printers: ['api'],
  client: ['api'],
  ipam: ['net', 'netlink', 'sys'],
  proxy: ['api', 'exec', 'net'],
  dns: ['api', 'net'],
  cni: ['api', 'client', 'exec', 'ipam', 'net', 'netlink', 'netns', 'sys'],
  controlplane: ['api', 'flags', 'http', 'net', 'printers', 'version'],
  agent: ['api', 'client', 'cni', 'dns', 'exec', 'flags', 'http', 'net', 'netlink', 'netns', 'proxy', 'sys', 'version'],
  lab: ['agent', 'api', 'client', 'net', 'netlink', 'netns', 'sys', 'version'],
  cli: ['api', 'client', 'flags', 'lab', 'net', 'netns', 'printers', 'version'],
};

module.exports = { MAY_IMPORT };
