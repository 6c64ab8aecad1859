// Drives an atmls host with the official TypeScript client (@atproto/api's AtpAgent) and
// checks its proofs and CARs with the official @atproto/repo. Usage:
//   node interop.mjs <host-url> <keyPackage-record.json>
// Prints one JSON object with what it saw; exits non-zero on the first failure.
import { readFileSync } from 'node:fs'
import { AtpAgent } from '@atproto/api'
import { verifyRecords, verifyRepoCar } from '@atproto/repo'

const [url, recordFile] = process.argv.slice(2)
const record = JSON.parse(readFileSync(recordFile, 'utf8'))
const collection = 'chat.mls.keyPackage'
const out = {}

const signup = new AtpAgent({ service: url })
await signup.createAccount({
  handle: 'interop.test',
  email: 'interop@example.com',
  password: 'interop password',
})
out.created = signup.session.did

const agent = new AtpAgent({ service: url })
await agent.login({ identifier: 'interop.test', password: 'interop password' })
const did = agent.session.did
out.loggedIn = did

const uris = []
for (const deviceId of ['interop-device-1', 'interop-device-2']) {
  const res = await agent.com.atproto.repo.createRecord({
    repo: did,
    collection,
    record: { ...record, deviceId },
  })
  out.validationStatus = res.data.validationStatus
  uris.push(res.data.uri)
}
const listed = await agent.com.atproto.repo.listRecords({ repo: did, collection })
out.listedBefore = listed.data.records.length
const firstRkey = uris[0].split('/').pop()
const secondRkey = uris[1].split('/').pop()
await agent.com.atproto.repo.deleteRecord({ repo: did, collection, rkey: firstRkey })
const after = await agent.com.atproto.repo.listRecords({ repo: did, collection })
out.listedAfter = after.data.records.map((r) => r.uri)
const got = await agent.com.atproto.repo.getRecord({ repo: did, collection, rkey: secondRkey })
out.gotDeviceId = got.data.value.deviceId

// The account's signing key, from the DID document in the host's PLC directory.
const doc = await (await fetch(`${url}/${did}`)).json()
const vm = doc.verificationMethod.find((m) => m.id.endsWith('#atproto'))
const didKey = `did:key:${vm.publicKeyMultibase}`

const proof = await agent.com.atproto.sync.getRecord({ did, collection, rkey: secondRkey })
const claims = await verifyRecords(new Uint8Array(proof.data), did, didKey)
out.proofRecords = claims.map((c) => ({ rkey: c.rkey, deviceId: c.record?.deviceId }))

const car = await agent.com.atproto.sync.getRepo({ did })
const verified = await verifyRepoCar(new Uint8Array(car.data), did, didKey)
out.carCreates = verified.creates.map((c) => `${c.collection}/${c.rkey}`)
out.carCommit = verified.commit.cid.toString()
const latest = await agent.com.atproto.sync.getLatestCommit({ did })
out.latestCommit = latest.data.cid

// A record from a tampered-with key must not verify.
try {
  await verifyRepoCar(new Uint8Array(car.data), did, 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme')
  out.wrongKeyRefused = false
} catch {
  out.wrongKeyRefused = true
}

console.log(JSON.stringify(out))
