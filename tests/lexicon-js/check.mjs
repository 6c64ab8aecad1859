// Loads every lexicon in lexicons/ into the official @atproto/lexicon `Lexicons` set (which
// parses each document with its own schema and resolves refs), then validates the example
// records in tests/lexicon-examples/: valid-* must pass, invalid-* must be rejected; and the
// records, content objects and envelopes of the test vectors (tests/vectors/) must pass.
// Prints one line per case and a closing "N passed, N failed" line.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Lexicons, jsonToLex } from '@atproto/lexicon'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')

function jsonFiles(dir) {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return jsonFiles(path)
    return name.endsWith('.json') ? [path] : []
  })
}

let passed = 0
let failed = 0
const ok = (name) => { passed++; console.log(`ok   ${name}`) }
const bad = (name, why) => { failed++; console.log(`FAIL ${name}: ${why}`) }

const lexicons = new Lexicons()
for (const file of jsonFiles(join(root, 'lexicons'))) {
  const doc = JSON.parse(readFileSync(file, 'utf8'))
  const rel = file.slice(root.length + 1)
  try {
    lexicons.add(doc)
    const expected = 'lexicons/' + doc.id.replaceAll('.', '/') + '.json'
    if (rel !== expected) bad(rel, `path does not match its NSID (expected ${expected})`)
    else ok(`load ${doc.id}`)
  } catch (e) {
    bad(rel, e.message)
  }
}

// Every ref in every document must resolve.
for (const doc of lexicons.docs.values()) {
  const refs = []
  const walk = (v) => {
    if (Array.isArray(v)) return v.forEach(walk)
    if (v && typeof v === 'object') {
      if (v.type === 'ref') refs.push(v.ref)
      if (v.type === 'union') refs.push(...v.refs)
      Object.values(v).forEach(walk)
    }
  }
  walk(doc.defs)
  for (const ref of refs) {
    const full = ref.startsWith('#') ? doc.id + ref : ref
    try {
      lexicons.getDefOrThrow(full)
      ok(`ref ${doc.id} -> ${ref}`)
    } catch (e) {
      bad(`ref ${doc.id} -> ${ref}`, e.message)
    }
  }
}

const examples = join(root, 'tests', 'lexicon-examples')
for (const nsid of readdirSync(examples).sort()) {
  const dir = join(examples, nsid)
  if (!statSync(dir).isDirectory()) continue
  for (const name of readdirSync(dir).sort()) {
    const record = jsonToLex(JSON.parse(readFileSync(join(dir, name), 'utf8')))
    const label = `${nsid}/${name}`
    let error = null
    try {
      if (lexicons.getDefOrThrow(nsid).type === 'record') {
        lexicons.assertValidRecord(nsid, record)
      } else {
        const { $type, ...value } = record
        if ($type !== nsid) throw new Error(`$type ${$type} is not ${nsid}`)
        const result = lexicons.validate(nsid, value)
        if (!result.success) throw result.error
      }
    } catch (e) {
      error = e
    }
    if (name.startsWith('valid-')) error ? bad(label, `rejected: ${error.message}`) : ok(label)
    else if (name.startsWith('invalid-')) error ? ok(`${label} (rejected: ${error.message})`) : bad(label, 'accepted')
  }
}

// The test vectors' records, content objects and envelopes are valid instances.
const vectorsDir = join(root, 'tests', 'vectors')
const vectorCases = [
  ['records.json', (v) => [v.record.$type, v.record]],
  ['content.json', (v) => ['chat.mls.content', v.content]],
  ['envelopes.json', (v) => (v.json ? ['chat.mls.defs#envelope', v.json] : null)],
]
for (const [file, pick] of vectorCases) {
  const { vectors } = JSON.parse(readFileSync(join(vectorsDir, file), 'utf8'))
  for (const vector of vectors) {
    const picked = pick(vector)
    if (!picked) continue
    const [lexUri, json] = picked
    const label = `vector ${file}: ${vector.name}`
    try {
      const value = jsonToLex(json)
      if (lexicons.getDefOrThrow(lexUri).type === 'record') {
        lexicons.assertValidRecord(lexUri, value)
      } else {
        const { $type, ...rest } = value
        if ($type !== undefined && $type !== lexUri) throw new Error(`$type ${$type} is not ${lexUri}`)
        const result = lexicons.validate(lexUri, rest)
        if (!result.success) throw result.error
      }
      ok(label)
    } catch (e) {
      bad(label, e.message)
    }
  }
}

console.log(`lexicon-js: ${passed} passed, ${failed} failed`)
process.exit(failed === 0 && passed > 0 ? 0 : 1)
