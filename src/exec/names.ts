// The packet-filter objects podwire owns, in one place: the agent's masquerade and service proxy
// share the nftables table `inet podwire` (each owns only its chains in it), the CNI plugin's
// ipMasq has its own table, and the iptables mode's chains carry the PODWIRE- prefix. Nothing of
// ours lives outside these names, and nothing outside them is ever flushed or deleted.
/** The agent's table (family inet): the masquerade chain and the service proxy's objects. */
export const NFT_TABLE = 'podwire';
/** The agent's masquerade chain in NFT_TABLE (not `masquerade`: an nft keyword nftables 1.0.6 refuses as a name). */
export const NFT_MASQ_CHAIN = 'pod-masquerade';
/**
 * The agent's chains in NFT_TABLE that keep the VXLAN overlay's outer packets (UDP to the VXLAN
 * port) out of conntrack: one at the prerouting hook (received), one at output (sent), both at
 * priority raw. Only the inner packets need tracking (masquerade, service DNAT).
 */
export const NFT_NOTRACK_CHAINS = { prerouting: 'overlay-notrack-in', output: 'overlay-notrack-out' } as const;
/** The agent's masquerade chain in the iptables nat table, jumped to from POSTROUTING. */
export const IPT_MASQ_CHAIN = 'PODWIRE-POSTRTG';
/** The CNI plugin's ipMasq table (family inet), separate from the agent's so either can run alone. */
export const CNI_MASQ_TABLE = 'podwire-cni';
/**
 * `podwire trace`'s tables (family inet), one per trace: `podwire-trace-<id>`, created by the
 * agent for the few seconds of one probe (it marks that probe for nftables tracing) and deleted after.
 */
export const NFT_TRACE_TABLE = 'podwire-trace';
