import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { KAFKA_ASSETS_DIR, KAFKA_VERSION } from './kafka-distribution.js'

describe('the pinned Apache Kafka version', () => {
  it('is the same in kafka-distribution.ts and in kafka/pom.xml (Maven fetches the pom, the code names the jar)', () => {
    const pom = readFileSync(join(KAFKA_ASSETS_DIR, 'pom.xml'), 'utf8')
    const versions = [...pom.matchAll(/<kafka\.version>([^<]+)<\/kafka\.version>/g)].map((m) => m[1]!.trim())
    expect(versions).toHaveLength(1)
    expect(versions[0]).toBe(KAFKA_VERSION)
    // The dependency uses the property, not a second literal version.
    expect(pom).toMatch(/<artifactId>kafka_2\.13<\/artifactId>\s*<version>\$\{kafka\.version\}<\/version>/)
  })
})
