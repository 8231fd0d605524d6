import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import type { Report } from './report.js'
import { isObject, parseYaml, read, type Json } from './util.js'

/** Helm's merge of a values file over the defaults: maps merge, a null deletes the key, the rest replaces. */
export function coalesce(base: Json, override: unknown): Json {
  const out: Json = { ...base }
  for (const [key, value] of Object.entries(isObject(override) ? override : {})) {
    if (value === null) delete out[key]
    else if (isObject(value) && isObject(out[key])) out[key] = coalesce(out[key], value)
    else out[key] = value
  }
  return out
}

/** values.yaml and ci/*.yaml against values.schema.json (ajv, strict), and value sets it must refuse. */
export function checkValues(chart: string, report: Report): void {
  const schema = JSON.parse(read(join(chart, 'values.schema.json'))) as Json
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true })
  let validate: ReturnType<typeof ajv.compile>
  try {
    validate = ajv.compile(schema)
    report.ok('values.schema.json compiles (ajv, draft-07, strict mode)')
  } catch (error) {
    report.fail(`values.schema.json does not compile: ${(error as Error).message}`)
    return
  }
  const defaults = parseYaml(read(join(chart, 'values.yaml'))) as Json
  const errorsOf = (values: Json): string[] =>
    validate(values) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}${typeof e.params.additionalProperty === 'string' ? ` (${e.params.additionalProperty})` : ''}`)
  const check = (label: string, values: Json): void => {
    const errors = errorsOf(values)
    if (errors.length === 0) report.ok(`${label} matches the schema`)
    else report.fail(`${label} violates the schema: ${errors.join('; ')}`)
  }
  check('values.yaml', defaults)
  const ciDir = join(chart, 'ci')
  for (const file of existsSync(ciDir) ? readdirSync(ciDir).filter((n) => n.endsWith('.yaml')).sort() : []) {
    check(`values.yaml + ci/${file}`, coalesce(defaults, parseYaml(read(join(ciDir, file)))))
  }
  const invalid: Array<[string, Json]> = [
    ['an unknown top-level key', { maxAttempt: 3 }],
    ['an unknown nested key', { kafka: { sasl: { passwrd: 'x' } } }],
    ['a broker without a port', { kafka: { brokers: ['kafka'] } }],
    ['exhaustedPolicy "drop"', { exhaustedPolicy: 'drop' }],
    ['maxAttempts 0', { maxAttempts: 0 }],
    ['handlerTimeoutMs 0', { handlerTimeoutMs: 0 }],
    ['purgeResolvedRecords "yes"', { purgeResolvedRecords: 'yes' }],
    ['jitter 1.5', { backoff: { jitter: 1.5 } }],
    ['a string port', { metrics: { port: '9464' } }],
    ['port 0 (a container port)', { metrics: { port: 0 } }],
    ['logLevel "trace"', { logLevel: 'trace' }],
    ['sasl.mechanism "gssapi"', { kafka: { sasl: { mechanism: 'gssapi' } } }],
    ['an invalid topic name', { topics: ['orders/eu'] }],
    ['a topic template with a slash', { topicNaming: { retry: '{topic}/retry' } }],
    ['a malformed image digest', { image: { digest: 'sha256:abc' } }],
    ['an admin token given as a value', { adminToken: { value: 'secret' } }],
  ]
  for (const [label, override] of invalid) {
    if (errorsOf(coalesce(defaults, override)).length > 0) report.ok(`the schema rejects ${label}`)
    else report.fail(`the schema accepts ${label}`)
  }
}
