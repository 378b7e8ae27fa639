import { defineConfig } from 'vitest/config';

/**
 * Two projects:
 * - unit: pure logic beside the code (`src/**\/*.test.ts`), no servers, runs in parallel.
 * - integration: `test/**\/*.test.ts` in each package, against the REAL local stack started by
 *   `hack/stack.sh up`. Files run one after another because some of them kill and restart shared
 *   servers (Sentinel failover, broker stop, replica outage).
 */
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['services/*/src/**/*.test.ts', 'operators/*/src/**/*.test.ts', 'bench/src/**/*.test.ts'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: [
            'services/*/test/**/*.test.ts',
            'operators/*/test/**/*.test.ts',
            'observability/test/**/*.test.ts',
            'charts/test/**/*.test.ts',
            'k8s/test/**/*.test.ts',
          ],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 60_000,
          hookTimeout: 120_000,
          globalSetup: ['./hack/vitest-stack-check.ts'],
        },
      },
    ],
  },
});
