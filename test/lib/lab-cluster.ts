// A netns lab cluster for one tap test: created, and destroyed in the test's teardown, where any
// namespace or process it leaked fails the test.
import type { Test } from 'tap';
import { createCluster, destroyCluster, type LabCluster } from '../../src/lab/cluster.js';

export async function withCluster(t: Test, opts: Parameters<typeof createCluster>[0]): Promise<LabCluster> {
  const c = await createCluster(opts);
  t.teardown(() => {
    const leaks = destroyCluster(c);
    if (leaks.length) throw new Error(`lab leaked: ${leaks.join(', ')}`);
  });
  return c;
}
