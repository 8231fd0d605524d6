/* global document, window, fetch, setTimeout, setInterval, FormData, URLSearchParams, Node */
// The Detour console's page: plain DOM, no framework, no network beyond its own /api.
// Every value from the API is put into the page with textContent, never as HTML.

const refreshMs = Number(document.body.dataset.refreshMs) || 5000
let config = null

function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue
    if (name === 'class') element.className = value
    else if (name.startsWith('on')) element.addEventListener(name.slice(2), value)
    else element.setAttribute(name, value === true ? '' : String(value))
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue
    element.append(child instanceof Node ? child : document.createTextNode(String(child)))
  }
  return element
}

async function api(path, body) {
  const init = body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }
  const response = await fetch(path, { credentials: 'same-origin', ...init })
  if (response.status === 401) {
    window.location.assign('/login')
    throw new Error('signed out')
  }
  const data = await response.json().catch(() => ({}))
  if (!response.ok) throw new Error(data.error ?? `${response.status} ${response.statusText}`)
  return data
}

function message(text, kind = 'info') {
  const box = h('div', { class: `message ${kind}` }, text)
  document.getElementById('messages').append(box)
  setTimeout(() => box.remove(), kind === 'error' ? 12000 : 6000)
}

function age(ms) {
  if (ms === undefined || ms === null) return '?'
  const s = Math.floor(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, '0')}s`
  const hours = Math.floor(m / 60)
  if (hours < 48) return `${hours}h ${String(m % 60).padStart(2, '0')}m`
  return `${Math.floor(hours / 24)}d ${String(hours % 24).padStart(2, '0')}h`
}

function badge(text, kind = text) {
  return h('span', { class: `badge ${kind}` }, text)
}

/** Shows a confirmation dialog; resolves true when confirmed. */
function confirmDialog(title, body, okLabel = 'Confirm') {
  const dialog = document.getElementById('confirm')
  document.getElementById('confirm-title').textContent = title
  document.getElementById('confirm-body').replaceChildren(body)
  document.getElementById('confirm-ok').textContent = okLabel
  dialog.returnValue = ''
  dialog.showModal()
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }))
}

function dialogOpen() {
  return document.getElementById('confirm').open
}

// ---- pending -----------------------------------------------------------------------------------

async function refreshPending() {
  const report = await api('/api/pending')
  document.getElementById('pending-summary').textContent =
    `${report.pendingIds} pending id${report.pendingIds === 1 ? '' : 's'} in ${report.groups} group${report.groups === 1 ? '' : 's'}` +
    (report.oldest ? ` · oldest ${age(report.oldest.ageMs)}` : '')
  const partitions = document.getElementById('partitions')
  partitions.replaceChildren(
    ...report.topics.map((topic) =>
      h(
        'div',
        { class: 'partitions' },
        topic.partitions.map((p) =>
          h(
            'div',
            { class: `partition${p.pendingIds > 0 ? ' busy' : ''}`, 'data-partition': `${topic.source}/${p.partition}` },
            h('div', { class: 'name' }, `${topic.source} / ${p.partition}`),
            h('div', { class: 'count' }, `${p.pendingIds}`, h('span', { class: 'summary' }, `${p.groups.length} group${p.groups.length === 1 ? '' : 's'}`)),
            h('div', { class: 'name' }, p.oldest ? `oldest ${age(p.oldest.ageMs)}` : 'nothing pending'),
          ),
        ),
      ),
    ),
  )
  const rows = []
  for (const topic of report.topics) {
    for (const partition of topic.partitions) {
      for (const group of partition.groups) {
        for (const id of group.ids) {
          const why = id.held
            ? `held after ${id.held.attempts} attempts: ${id.held.lastError}`
            : id.retry && id.retry.errorMessage
              ? `${id.retry.errorName ?? 'Error'}: ${id.retry.errorMessage}`
              : id.state === 'no-retry-record'
                ? 'no unresolved retry record: nothing will release it'
                : id.position > 0
                  ? `behind ${group.ids[0].id}`
                  : ''
          let action = null
          if (id.state === 'held' && config.worker) action = h('button', { class: 'small', type: 'button', onclick: () => release(id.id, 'worker') }, 'Release')
          else if (id.state === 'no-retry-record') action = h('button', { class: 'small', type: 'button', onclick: () => release(id.id, 'direct') }, 'Release…')
          rows.push(
            h(
              'tr',
              { 'data-id': id.id, 'data-state': id.state },
              h('td', {}, `${topic.source}/${partition.partition}`),
              h('td', { class: 'mono' }, group.groupKey),
              h('td', { class: 'mono' }, id.id),
              h('td', {}, id.position),
              h('td', {}, age(id.ageMs)),
              h('td', {}, id.reason ?? '-'),
              h('td', {}, badge(id.state)),
              h('td', { class: 'why' }, why),
              h('td', {}, action),
            ),
          )
        }
      }
    }
  }
  document.querySelector('#pending-table tbody').replaceChildren(...rows)
  document.getElementById('pending-table').hidden = rows.length === 0
  document.getElementById('pending-empty').hidden = rows.length > 0
  document.getElementById('pending-warnings').replaceChildren(...report.warnings.map((w) => h('li', {}, w)))
}

async function refreshHeld() {
  if (!config.worker) return
  document.getElementById('held-section').hidden = false
  let held
  try {
    held = await api('/api/held')
  } catch (error) {
    document.getElementById('held-summary').textContent = `worker unreachable: ${error.message}`
    return
  }
  document.getElementById('held-summary').textContent = `${held.length} at ${config.worker}`
  document.querySelector('#held-table tbody').replaceChildren(
    ...held.map((group) =>
      h(
        'tr',
        { 'data-held': group.id },
        h('td', { class: 'mono' }, group.id),
        h('td', { class: 'mono' }, group.groupKey),
        h('td', {}, group.attempts),
        h('td', {}, group.since),
        h('td', { class: 'why' }, group.lastError),
        h('td', {}, h('button', { class: 'small', type: 'button', onclick: () => release(group.id, 'worker') }, 'Release')),
      ),
    ),
  )
  document.getElementById('held-table').hidden = held.length === 0
  document.getElementById('held-empty').hidden = held.length > 0
}

async function refreshApps() {
  if (!config.apps) return
  document.getElementById('apps-section').hidden = false
  const apps = await api('/api/apps')
  document.getElementById('apps').replaceChildren(
    ...apps.map((app) =>
      h(
        'div',
        { class: 'card', 'data-app': app.url },
        h('div', { class: 'url' }, app.url),
        !app.reachable
          ? badge(`down: ${app.error ?? '?'}`, 'down')
          : badge(app.ready === undefined ? 'no detour_ready' : app.ready ? 'ready' : 'rebuilding', app.ready ? 'ready' : 'not-ready'),
        app.reachable ? h('div', {}, `pending ids: ${app.pendingIds ?? '-'}`) : null,
        app.rebuild
          ? h('div', {}, `rebuilds: ${app.rebuild.count}${app.rebuild.meanSeconds !== undefined ? `, mean ${app.rebuild.meanSeconds.toFixed(3)} s` : ''}`)
          : null,
      ),
    ),
  )
}

async function release(id, mode) {
  try {
    const { preview } = await api('/api/release', { id, mode, dryRun: true })
    let body
    let force = false
    if (mode === 'worker') {
      body = h('div', {}, h('p', {}, 'The worker writes the tombstone; the group continues with its next id.'), h('dl', {}, ...fields({ id: preview.id, 'group key': preview.groupKey, attempts: preview.attempts, since: preview.since, 'last error': preview.lastError })))
    } else {
      force = preview.risk !== undefined && preview.risk !== null
      body = h(
        'div',
        {},
        h('p', {}, `Writes the tombstone of ${preview.id} to ${preview.redirectTopic}/${preview.partition} (direct release: no worker involved).`),
        h('dl', {}, ...fields({ 'group key': preview.groupKey, state: preview.pending.state, reason: preview.pending.reason ?? '-', age: age(preview.pending.ageMs), group: preview.groupIds.join(', ') })),
        force ? h('p', { class: 'risk' }, `Risk: ${preview.risk}`) : null,
      )
    }
    if (!(await confirmDialog(`Release ${id}?`, body, force ? 'Release anyway' : 'Release'))) return
    const result = await api('/api/release', { id, mode, dryRun: false, force })
    message(mode === 'direct' ? `Released ${id}: tombstone at ${result.result.tombstone.topic}/${result.result.tombstone.partition}/${result.result.tombstone.offset}` : `Released ${id} through the worker`)
    await Promise.allSettled([refreshPending(), refreshHeld()])
  } catch (error) {
    message(`Release of ${id} failed: ${error.message}`, 'error')
  }
}

function fields(map) {
  return Object.entries(map).flatMap(([name, value]) => [h('dt', {}, name), h('dd', {}, value === undefined ? '-' : String(value))])
}

// ---- dead letters ------------------------------------------------------------------------------

function selected() {
  return [...document.querySelectorAll('#dlt-table tbody input[type=checkbox]:checked')].map((box) => box.value)
}

function updateReplayButton() {
  const count = selected().length
  const button = document.getElementById('replay-dry-run')
  button.disabled = count === 0
  button.textContent = count === 0 ? 'Replay selected (dry run)…' : `Replay ${count} selected (dry run)…`
}

function dltQuery() {
  const form = new FormData(document.getElementById('dlt-filter'))
  const query = new URLSearchParams()
  for (const [name, value] of form) if (String(value).trim() !== '') query.set(name, String(value).trim())
  return query
}

async function searchDlt() {
  const page = await api(`/api/dlt?${dltQuery()}`)
  document.getElementById('dlt-summary').textContent = `${page.matched} of ${page.scanned} on ${page.errorTopics.join(', ')}${page.matched > page.deadLetters.length ? ` (newest ${page.deadLetters.length})` : ''}`
  const rows = page.deadLetters.map((dl) =>
    h(
      'tr',
      { class: 'clickable', 'data-coordinates': dl.coordinates, onclick: (event) => event.target.tagName !== 'INPUT' && showDeadLetter(dl.coordinates) },
      h('td', {}, h('input', { type: 'checkbox', value: dl.coordinates, 'aria-label': `select ${dl.coordinates}`, onchange: updateReplayButton })),
      h('td', { class: 'mono' }, dl.coordinates),
      h('td', {}, dl.failedAt ?? new Date(Number(dl.timestamp)).toISOString()),
      h('td', {}, dl.reason ?? '-'),
      h('td', { class: 'why' }, dl.errorName ? `${dl.errorName}: ${dl.errorMessage ?? ''}` : (dl.errorMessage ?? '-')),
      h('td', { class: 'mono' }, dl.keyDisplay),
      h('td', { class: 'mono' }, dl.source ?? '-'),
      h('td', {}, dl.replayed ? `${dl.replayed.to} ${dl.replayed.at}${dl.replayed.count > 1 ? ` ×${dl.replayed.count}` : ''}` : '-'),
    ),
  )
  document.querySelector('#dlt-table tbody').replaceChildren(...rows)
  document.getElementById('dlt-table').hidden = rows.length === 0
  document.getElementById('dlt-empty').hidden = rows.length > 0
  document.getElementById('dlt-all').checked = false
  updateReplayButton()
}

async function showDeadLetter(coordinates) {
  try {
    const dl = await api(`/api/dlt/record?coordinates=${encodeURIComponent(coordinates)}`)
    document.getElementById('detail-title').textContent = `Dead letter ${dl.coordinates}`
    document.getElementById('detail-fields').replaceChildren(
      ...fields({ key: dl.keyDisplay, reason: dl.reason, error: dl.errorName ? `${dl.errorName}: ${dl.errorMessage ?? ''}` : dl.errorMessage, 'failed at': dl.failedAt, component: dl.component, id: dl.id, source: dl.source, replayed: dl.replayed ? `${dl.replayed.count}× to ${dl.replayed.to}, last ${dl.replayed.at}` : 'never' }),
    )
    document.getElementById('detail-value').textContent = dl.value === null ? '(null)' : dl.value.encoding === 'utf8' ? dl.value.data : `base64:${dl.value.data}`
    const headerRows = [
      ...Object.entries(dl.detourHeaders).map(([name, value]) => h('tr', {}, h('td', { class: 'mono' }, name), h('td', { class: 'why mono' }, value))),
      ...Object.entries(dl.userHeaders).map(([name, value]) =>
        h('tr', {}, h('td', { class: 'mono' }, name), h('td', { class: 'why mono' }, (Array.isArray(value) ? value : [value]).map((v) => (v.encoding === 'utf8' ? v.data : `base64:${v.data}`)).join(' | '))),
      ),
    ]
    document.getElementById('detail-headers').replaceChildren(...headerRows)
    document.getElementById('dlt-detail').hidden = false
  } catch (error) {
    message(`Cannot show ${coordinates}: ${error.message}`, 'error')
  }
}

async function replaySelected() {
  const coordinates = selected()
  const to = document.getElementById('replay-to').value
  const force = document.getElementById('replay-force').checked
  try {
    const { plan } = await api('/api/replay', { coordinates, to, force, dryRun: true })
    const body = h(
      'div',
      { id: 'replay-plan' },
      h('p', {}, `Dry run: ${plan.replays} of ${plan.decisions.length} would be replayed to ${to === 'source' ? 'their source topics' : 'the retry flow under their original ids'}. Nothing is written until you confirm.`),
      h(
        'table',
        { class: 'data' },
        h('thead', {}, h('tr', {}, h('th', {}, 'Dead letter'), h('th', {}, 'Action'), h('th', {}, 'Writes to'), h('th', {}, 'Note'))),
        h(
          'tbody',
          {},
          plan.decisions.map((d) =>
            h('tr', { 'data-plan': d.deadLetter }, h('td', { class: 'mono' }, d.deadLetter), h('td', {}, d.action), h('td', { class: 'mono' }, d.writes.map((w) => `${w.topic}/${w.partition}`).join(' + ') || '-'), h('td', { class: 'why' }, d.note ?? '')),
          ),
        ),
      ),
    )
    if (plan.replays === 0) {
      await confirmDialog('Nothing to replay', body, 'Close')
      return
    }
    if (!(await confirmDialog(`Replay ${plan.replays} dead letter${plan.replays === 1 ? '' : 's'}?`, body, 'Replay'))) return
    const { execution } = await api('/api/replay', { coordinates, to, force, dryRun: false })
    const written = execution.outcomes.filter((o) => o.action === 'replayed').map((o) => `${o.deadLetter} → ${o.written.map((w) => `${w.topic}/${w.partition}/${w.offset}`).join(' + ')}`)
    message(`Replayed ${execution.replayed}, skipped ${execution.skipped}${written.length ? `: ${written.join('; ')}` : ''}`)
    const refreshed = await Promise.allSettled([searchDlt(), refreshPending()])
    for (const result of refreshed) if (result.status === 'rejected') message(`Refresh failed: ${result.reason.message}`, 'error')
  } catch (error) {
    message(`Replay failed: ${error.message}`, 'error')
  }
}

// ---- wiring --------------------------------------------------------------------------------------

async function refreshAll() {
  const results = await Promise.allSettled([refreshPending(), refreshHeld(), refreshApps()])
  const failed = results.find((r) => r.status === 'rejected')
  if (failed) message(`Refresh failed: ${failed.reason.message}`, 'error')
  document.getElementById('refreshed').textContent = `updated ${new Date().toLocaleTimeString()}`
}

async function main() {
  config = await api('/api/config')
  document.getElementById('scope').textContent = `consumer group ${config.consumerGroup} · ${config.topics.map((t) => t.source).join(', ')}${config.worker ? ` · worker ${config.worker}` : ''}`
  document.getElementById('dlt-filter').addEventListener('submit', (event) => {
    event.preventDefault()
    searchDlt().catch((error) => message(`Search failed: ${error.message}`, 'error'))
  })
  document.getElementById('dlt-all').addEventListener('change', (event) => {
    for (const box of document.querySelectorAll('#dlt-table tbody input[type=checkbox]')) box.checked = event.target.checked
    updateReplayButton()
  })
  document.getElementById('replay-dry-run').addEventListener('click', () => replaySelected())
  document.getElementById('refresh-now').addEventListener('click', () => refreshAll())
  let busy = false
  setInterval(async () => {
    if (busy || dialogOpen() || !document.getElementById('auto-refresh').checked) return
    busy = true
    try {
      await refreshAll()
    } finally {
      busy = false
    }
  }, refreshMs)
  await Promise.allSettled([refreshAll(), searchDlt()])
  document.body.dataset.loaded = 'true'
}

main().catch((error) => message(`The console could not start: ${error.message}`, 'error'))
