// Starts the official PLC server (@did-plc/server, in-memory database) on 127.0.0.1,
// POSTs the operations listed in the JSON file given as argument ([{did, op}, ...], in
// order), then prints each DID's document and audit log as JSON on stdout.
// Exit code 0 when every operation was accepted, 1 otherwise.
import { readFileSync } from 'node:fs'
import * as plc from '@did-plc/server'

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const db = plc.Database.mock()
const server = plc.PlcServer.create({ db, port: 0 })
const listener = await server.start()
const url = `http://127.0.0.1:${listener.address().port}`
const result = { accepted: [], documents: {}, audit: {} }
let failed = false
try {
  for (const { did, op } of input) {
    const res = await fetch(`${url}/${encodeURIComponent(did)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(op),
    })
    const text = await res.text()
    result.accepted.push({ did, status: res.status, body: text })
    if (res.status !== 200) failed = true
  }
  for (const did of new Set(input.map((x) => x.did))) {
    result.documents[did] = await (await fetch(`${url}/${did}`)).json()
    result.audit[did] = await (await fetch(`${url}/${did}/log/audit`)).json()
  }
} finally {
  await server.destroy()
}
console.log(JSON.stringify(result))
process.exit(failed ? 1 : 0)
