import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

const src = (path: string): string => fileURLToPath(new URL(path, import.meta.url))

/**
 * Three tiers, each runnable alone (`pnpm test:unit`, `test:broker`, `test:e2e`; `pnpm test` runs all):
 * - unit: no broker, no build (workspace packages resolve to their sources), seconds;
 * - broker (`*.broker.test.ts`): real kafkajs clients against the run's broker, from the sources too;
 * - e2e (`e2e/src/*.e2e.test.ts`): the whole system as child processes (the compiled programs).
 * The broker and e2e tiers share one broker, started by the global set-up (Apache Kafka when Java is here).
 */
export default defineConfig({
  resolve: {
    alias: {
      '@detour/admin': src('./packages/admin/src/index.ts'),
      '@detour/core': src('./packages/core/src/index.ts'),
      '@detour/main-app-sdk': src('./packages/main-app-sdk/src/index.ts'),
      '@detour/retry-app': src('./packages/retry-app/src/index.ts'),
      '@detour/testkit': src('./packages/testkit/src/index.ts'),
    },
  },
  test: {
    // Two test files at a time suit a 2-core machine (the broker takes its share).
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default', './scripts/summary-reporter.ts'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['packages/*/src/**/*.test.ts', 'e2e/src/**/*.test.ts', 'bench/src/**/*.test.ts', 'scripts/validate-deploy/*.test.ts'],
          exclude: ['**/*.broker.test.ts', '**/*.e2e.test.ts', '**/node_modules/**', '**/dist/**'],
        },
      },
      {
        extends: true,
        test: {
          name: 'broker',
          include: ['packages/*/src/**/*.broker.test.ts'],
          globalSetup: ['./scripts/vitest/shared-broker.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['e2e/src/**/*.e2e.test.ts'],
          globalSetup: ['./scripts/vitest/build.ts', './scripts/vitest/shared-broker.ts'],
        },
      },
    ],
  },
})
