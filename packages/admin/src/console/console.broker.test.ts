import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { decodeRedirectRecord, headerString } from '@detour/core'
import { skippedBecause, startBroker, waitFor, type TestBroker } from '@detour/testkit'
import { brokerScenario, fakeWorker, heldGroup, type BrokerScenario, type FakeWorker } from '../test-support/broker-scenario.js'
import { WorkerClient } from '../worker/worker-client.js'
import { startConsoleServer, type RunningConsole } from './console-server.js'

const CHROMIUM = '/usr/bin/chromium'
/** Where the screenshot goes: `DETOUR_CONSOLE_SCREENSHOT=docs/console.png` refreshes the README's picture. */
const SCREENSHOT = process.env.DETOUR_CONSOLE_SCREENSHOT

const METRICS = `# TYPE detour_ready gauge
detour_ready 1
# TYPE detour_pending_ids gauge
detour_pending_ids 4
# TYPE detour_rebuild_duration_seconds histogram
detour_rebuild_duration_seconds_bucket{le="0.05"} 1
detour_rebuild_duration_seconds_bucket{le="0.25"} 2
detour_rebuild_duration_seconds_bucket{le="+Inf"} 2
detour_rebuild_duration_seconds_sum 0.21
detour_rebuild_duration_seconds_count 2
`

const noBrowser = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install -y chromium)`

describe.skipIf(noBrowser !== undefined)(skippedBecause('the web console in headless Chromium, on the broker', noBrowser), () => {
  let broker: TestBroker
  let s: BrokerScenario
  let worker: FakeWorker
  let metrics: Server
  let running: RunningConsole
  let profile: string
  let context: BrowserContext
  let page: Page

  beforeAll(async () => {
    broker = await startBroker()
    s = await brokerScenario(broker, 2)
    worker = await fakeWorker(s)
    metrics = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
      response.end(METRICS)
    })
    await new Promise<void>((resolve) => metrics.listen(0, '127.0.0.1', resolve))
    const metricsUrl = `http://127.0.0.1:${(metrics.address() as AddressInfo).port}/metrics`
    const service = s.service({ worker: new WorkerClient({ url: worker.url }), appMetricsUrls: [metricsUrl] })
    running = await startConsoleServer({ service, port: 0, refreshMs: 2000 })
    profile = mkdtempSync(join(tmpdir(), 'detour-console-chromium-'))
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      viewport: { width: 1440, height: 1100 },
    })
    page = context.pages()[0] ?? (await context.newPage())
    // Every read is a consumer group join: generous waits for a busy 2-core machine.
    page.setDefaultTimeout(60_000)
  }, 180_000)

  afterAll(async () => {
    await context?.close()
    if (profile) rmSync(profile, { recursive: true, force: true })
    await running?.close()
    await new Promise<void>((resolve) => (metrics ? metrics.close(() => resolve()) : resolve()))
    await worker?.close()
    await s?.close()
    await broker?.stop()
  })

  it('shows pending groups as they appear, replays a dead letter, releases a stuck id and a held group', async () => {
    const source = s.topics.source
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    const withStack = (error: Error, frame: string): Error => Object.assign(error, { stack: `${error.name}: ${error.message}\n    at ${frame}\n    at eachMessage (/app/dist/handler.js:12:5)` })
    await s.deadLetter(0, 3, 'customer-1', {
      headers: { trace: 'trace-3' },
      error: withStack(Object.assign(new Error('payment service timed out'), { name: 'TimeoutError' }), 'chargeCard (/app/dist/payments.js:42:11)'),
    })
    await s.deadLetter(1, 8, 'customer-5', { reason: 'unprocessable', error: withStack(new TypeError("Cannot read properties of undefined (reading 'total')"), 'totalOf (/app/dist/orders.js:7:20)') })
    await page.goto(running.url)
    await page.waitForSelector('body[data-loaded="true"]')
    await page.waitForSelector('[data-app] .badge.ready')
    expect(await page.locator('#pending-empty').isVisible()).toBe(true)

    // The main app redirects: the group appears without a reload.
    const held = await s.redirect(0, 20, 'customer-1', { at: new Date(Date.now() - 2 * 3_600_000 - 17 * 60_000) })
    await s.redirect(0, 21, 'customer-1', { at: new Date(Date.now() - 40 * 60_000) })
    const stuck = await s.redirect(1, 7, 'customer-2', { withoutRetry: true, at: new Date(Date.now() - 25 * 60_000) })
    await s.redirect(1, 9, 'customer-3', { at: new Date(Date.now() - 90_000) })
    worker.held = [heldGroup(s, 0, 20, 'customer-1')]
    await page.waitForSelector(`tr[data-id="${held}"][data-state="held"]`)
    await page.waitForSelector(`tr[data-id="${stuck}"][data-state="no-retry-record"]`)
    await page.waitForSelector(`tr[data-held="${held}"]`)
    expect(await page.locator(`[data-partition="${source}/0"] .count`).textContent()).toMatch(/^2/)
    await page.locator('#dlt-filter button[type=submit]').click()
    await page.waitForSelector(`tr[data-coordinates="${s.topics.error}/1/0"]`)
    await page.locator(`tr[data-coordinates="${s.topics.error}/0/0"]`).click()
    await page.waitForSelector('#dlt-detail:not([hidden])')
    expect(await page.locator('#detail-headers').textContent()).toContain('detour-error-name')
    const screenshot = SCREENSHOT ?? join(profile, 'console.png')
    await page.screenshot({ path: screenshot, fullPage: true })
    expect(readFileSync(screenshot).subarray(1, 4).toString()).toBe('PNG')

    // Replay: the dry run shows it, nothing is written until confirmed, then the source topic has it.
    await page.locator(`input[value="${s.topics.error}/0/0"]`).check()
    await page.locator('#replay-dry-run').click()
    await page.waitForSelector(`#confirm[open] tr[data-plan="${s.topics.error}/0/0"]`)
    expect(await page.locator(`#confirm tr[data-plan="${s.topics.error}/0/0"]`).textContent()).toMatch(/replay.*waits behind/)
    const before = await s.service().listDeadLetters({}, {})
    expect(before.replays.size).toBe(0)
    await page.locator('#confirm-ok').click()
    await page.waitForSelector('.message:has-text("Replayed 1")')
    const [replayed] = await s.collect(source, 1)
    expect(replayed!.partition).toBe(0)
    expect(replayed!.message.value!.toString()).toBe('{"order":3}')
    expect(headerString(replayed!.message.headers, 'detour-replayed-from')).toBe(`${s.topics.error}/0/0`)
    await page.waitForSelector(`tr[data-coordinates="${s.topics.error}/0/0"] td:has-text("source")`).catch(async (error: Error) => {
      throw new Error(`${error.message}\nmessages on the page: ${await page.locator('#messages').textContent()}`)
    })

    // Release the stuck id: the preview says what it is, the tombstone lands on the redirect topic.
    await page.locator(`tr[data-id="${stuck}"] button`).click()
    await page.waitForSelector('#confirm[open]')
    expect(await page.locator('#confirm-body').textContent()).toContain('no-retry-record')
    await page.locator('#confirm-ok').click()
    await page.waitForSelector(`.message:has-text("Released ${stuck}")`)
    await page.waitForSelector(`tr[data-id="${stuck}"]`, { state: 'detached' })

    // Release the held group through the worker.
    await page.locator(`tr[data-held="${held}"] button`).click()
    await page.waitForSelector('#confirm[open]')
    await page.locator('#confirm-ok').click()
    await page.waitForSelector(`.message:has-text("Released ${held} through the worker")`)
    await waitFor(() => worker.requests.some((r) => r.method === 'POST' && r.body === JSON.stringify({ id: held })), 'the release request')
    await page.waitForSelector(`tr[data-id="${held}"]`, { state: 'detached' })

    // The topics afterwards: both tombstones on the redirect topic, the replay on the source, the ledger entry.
    const redirect = await s.collect(s.topics.redirect, 6)
    const tombstones = redirect.filter((m) => m.message.value === null).map((m) => decodeRedirectRecord(m.message).id)
    expect(tombstones.sort()).toEqual([held, stuck].sort())
    const after = await s.service().listDeadLetters({}, {})
    expect([...after.replays.keys()]).toEqual([`${s.topics.error}/0/0`])
    expect(errors).toEqual([])
  }, 240_000)
})
