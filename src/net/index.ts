// IP math for all of podwire: addresses (ip.ts) and CIDRs (cidr.ts). See README.md.
export * from './ip.js';
export * from './cidr.js';
export * from './mac.js';
