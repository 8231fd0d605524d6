import type { Reporter, TestModule } from 'vitest/node'

interface SharedState {
  broker?: { logTail?: (lines?: number) => string }
  logTail?: string
}

/**
 * Prints the plain closing line `N passed, N failed, N skipped` that CI reads, and, when a test failed, the
 * last lines of the shared broker's logs (the broker the global set-up started, see scripts/vitest/shared-broker.ts).
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === 'passed') passed++
        else if (state === 'failed') failed++
        else skipped++
      }
      if (module.state() === 'failed' && module.children.size === 0) failed++
    }
    if (failed > 0) {
      const shared = (globalThis as Record<symbol, unknown>)[Symbol.for('detour.vitest.global-setup')] as SharedState | undefined
      const tail = shared?.broker?.logTail?.(80) ?? shared?.logTail
      if (tail) process.stdout.write(`\nShared test broker, end of its logs:\n${tail}\n`)
    }
    process.stdout.write(`\nvitest: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
  }
}
