// The typed netlink library: import from here.
export * from './handle.js';
export * from './link.js';
export * from './names.js';
export * from './address.js';
export * from './route.js';
export * from './neigh.js';
export * from './fdb.js';
export * from './genl.js';
export * from './errors.js';
export * from './socket.js';
export * from './ip.js';
export { NETLINK_ROUTE, NETLINK_GENERIC } from './constants.js';
export * from './ipvs.js';
export * from './ipvs-decode.js';
export * from './ipvs-client.js';
