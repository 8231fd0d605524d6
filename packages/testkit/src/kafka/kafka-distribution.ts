import { execFile, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

/**
 * The Apache Kafka release the test kit runs. Pinned here and in `kafka/pom.xml` (a test checks that they
 * agree). 4.4.0: the newest release on Maven Central that runs on Java 17; every API Detour and its tests
 * use is still spoken by kafkajs 2.2.4 after KIP-896 (checked by `kafka-compat.broker.test.ts`).
 */
export const KAFKA_VERSION = '4.4.0'

/** The files that ship with the test kit: the pom, the log4j configuration and the JVM wrapper. */
export const KAFKA_ASSETS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'kafka')

const exec = promisify(execFile)

/** Where the jars, storage templates and class-data archive live: outside the work tree, shared by runs. */
export function kafkaCacheDir(version = KAFKA_VERSION): string {
  const base = process.env.DETOUR_KAFKA_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'detour', 'kafka')
  return join(base, version)
}

export interface KafkaDistribution {
  readonly version: string
  readonly home: string
  /** The runtime classpath (`<libs>/*`). */
  readonly classpath: string
  readonly java: string
  readonly log4jConfig: string
  readonly wrapper: string
}

/** Why the real-Kafka broker mode cannot run here, or `undefined` when it can. Synchronous and cheap. */
export function kafkaUnavailableReason(): string | undefined {
  if (!commandWorks('java', ['-version'])) return 'no `java` on the PATH (Java 17 or newer runs the Kafka broker)'
  if (existsSync(join(kafkaCacheDir(), 'libs', '.complete'))) return undefined
  if (!commandWorks('mvn', ['-v'])) return `no \`mvn\` on the PATH to fetch Apache Kafka ${KAFKA_VERSION} from Maven Central (and no jars cached in ${kafkaCacheDir()})`
  return undefined
}

const probed = new Map<string, boolean>()
function commandWorks(command: string, args: string[]): boolean {
  let works = probed.get(command)
  if (works === undefined) {
    const result = spawnSync(command, args, { stdio: 'ignore', timeout: 20_000 })
    works = result.error === undefined && result.status === 0
    probed.set(command, works)
  }
  return works
}

/**
 * Makes sure the Kafka jars are in the cache: the first call downloads them with Maven (about 45 MB,
 * ~20 s), later calls find them and need no network. Safe against concurrent callers (a directory lock).
 */
export async function ensureKafkaDistribution(log: (line: string) => void = () => {}): Promise<KafkaDistribution> {
  const home = kafkaCacheDir()
  const libs = join(home, 'libs')
  const complete = join(libs, '.complete')
  if (!existsSync(complete)) {
    mkdirSync(home, { recursive: true })
    await withLock(join(home, '.install.lock'), async () => {
      if (existsSync(complete)) return
      log(`Fetching Apache Kafka ${KAFKA_VERSION} from Maven Central into ${libs} (first run only)…`)
      const staging = join(home, `libs.${randomBytes(4).toString('hex')}`)
      try {
        await exec(
          'mvn',
          ['-B', '-q', '-f', join(KAFKA_ASSETS_DIR, 'pom.xml'), 'dependency:copy-dependencies', `-DoutputDirectory=${staging}`, '-DincludeScope=runtime'],
          { maxBuffer: 16 * 1024 * 1024, timeout: 15 * 60_000 },
        )
      } catch (error) {
        rmSync(staging, { recursive: true, force: true })
        const output = error as { stdout?: string; stderr?: string; message?: string }
        throw new Error(
          `Fetching Apache Kafka ${KAFKA_VERSION} with Maven failed. Check that Maven Central is reachable ` +
            `(or set KAFKA_BROKERS to use an existing cluster, or DETOUR_BROKER=embedded for the mock broker).\n` +
            `${output.stdout ?? ''}${output.stderr ?? ''}${output.message ?? ''}`.slice(0, 4000),
        )
      }
      const jars = readdirSync(staging).filter((file) => file.endsWith('.jar'))
      if (!jars.some((jar) => jar.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
        throw new Error(`Maven did not produce the kafka_2.13-${KAFKA_VERSION} jar in ${staging}`)
      }
      rmSync(libs, { recursive: true, force: true })
      renameSync(staging, libs)
      writeFileSync(complete, `${jars.sort().join('\n')}\n`)
      log(`Apache Kafka ${KAFKA_VERSION}: ${jars.length} jars cached`)
    })
  }
  return {
    version: KAFKA_VERSION,
    home,
    classpath: `${libs}/*`,
    java: 'java',
    log4jConfig: join(KAFKA_ASSETS_DIR, 'log4j2.properties'),
    wrapper: join(KAFKA_ASSETS_DIR, 'run-kafka.sh'),
  }
}

/** A fixed cluster id per version: storage templates formatted once are valid for every later cluster. */
export function clusterId(version = KAFKA_VERSION): string {
  // 16 bytes, base64url without padding: the form `kafka-storage random-uuid` prints.
  return createHash('sha256').update(`detour-testkit-${version}`).digest().subarray(0, 16).toString('base64url')
}

/**
 * Formatting storage costs a JVM start (~3 s). It depends only on the node id and the cluster id, so each
 * node's formatted directory is kept in the cache and copied for every new cluster.
 */
export async function storageTemplate(dist: KafkaDistribution, nodeId: number, propertiesFor: (logDir: string) => string): Promise<string> {
  const templates = join(dist.home, 'storage')
  const template = join(templates, `node-${nodeId}`)
  if (existsSync(join(template, 'meta.properties'))) return template
  mkdirSync(templates, { recursive: true })
  await withLock(join(templates, `.node-${nodeId}.lock`), async () => {
    if (existsSync(join(template, 'meta.properties'))) return
    const staging = join(templates, `node-${nodeId}.${randomBytes(4).toString('hex')}`)
    const config = `${staging}.properties`
    writeFileSync(config, propertiesFor(staging))
    try {
      await exec(
        dist.java,
        ['-Xmx256m', '-XX:TieredStopAtLevel=1', `-Dlog4j2.configurationFile=${dist.log4jConfig}`, '-cp', dist.classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId(dist.version), '-c', config],
        { timeout: 120_000 },
      )
      renameSync(staging, template)
    } finally {
      rmSync(config, { force: true })
      rmSync(staging, { recursive: true, force: true })
    }
  })
  return template
}

/** A cross-process lock: a directory created atomically; stale after 20 minutes (a killed holder). */
async function withLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20 * 60_000
  for (;;) {
    try {
      mkdirSync(path)
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const since = lockAge(path)
      if (since !== undefined && since > 20 * 60_000) {
        rmSync(path, { recursive: true, force: true })
        continue
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the lock ${path}`)
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  writeFileSync(join(path, 'owner'), `${process.pid} ${Date.now()}\n`)
  try {
    return await fn()
  } finally {
    rmSync(path, { recursive: true, force: true })
  }
}

function lockAge(path: string): number | undefined {
  try {
    const [, at] = readFileSync(join(path, 'owner'), 'utf8').trim().split(' ')
    return Date.now() - Number(at)
  } catch {
    return undefined
  }
}
