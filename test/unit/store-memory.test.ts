// The in-memory store against the shared Store contract.
import t from 'tap';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import { storeContract } from '../lib/store-contract.js';

storeContract(t, 'memory', async (opts) => new MemoryStore(opts));
