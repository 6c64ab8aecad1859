// Starts the official atproto PLC directory and PDS (TestNetworkNoAppView of
// @atproto/dev-env, the in-process dev network) on 127.0.0.1, prints one JSON line
// {"plcUrl", "pdsUrl", "versions"} on stdout, and stays up until stdin closes or the
// process gets SIGTERM/SIGINT; then it closes both services and deletes its data.
import dns from 'node:dns'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'

// Loopback only: every server the dev network opens (PDS, PLC) listens on 127.0.0.1,
// and "localhost" (the host name in the PDS's URL) resolves to it.
dns.setDefaultResultOrder('ipv4first')
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1')
  } else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined && !args[0].host) {
    args[0] = { ...args[0], host: '127.0.0.1' }
  }
  return listen.apply(this, args)
}

// The package root of @atproto/dev-env also loads parts that fail on Node 20.
const { TestNetworkNoAppView } = await import('@atproto/dev-env/dist/network-no-appview.js')

const require = createRequire(import.meta.url)
const version = (pkg) => require(`${pkg}/package.json`).version

const data = fs.mkdtempSync(path.join(os.tmpdir(), 'atmls-official-pds-'))
fs.mkdirSync(path.join(data, 'pds'))
const network = await TestNetworkNoAppView.create({
  pds: {
    dataDirectory: path.join(data, 'pds'),
    blobstoreDiskLocation: path.join(data, 'blobs'),
  },
})

let closing = false
async function close(code) {
  if (closing) return
  closing = true
  try {
    await network.close()
  } catch (e) {
    console.error('closing the dev network:', e)
  }
  fs.rmSync(data, { recursive: true, force: true })
  process.exit(code)
}
process.on('SIGTERM', () => close(0))
process.on('SIGINT', () => close(0))
process.stdin.on('end', () => close(0))
process.stdin.on('close', () => close(0))
process.stdin.resume()

console.log(
  JSON.stringify({
    plcUrl: network.plc.url,
    pdsUrl: network.pds.url,
    pdsDid: network.pds.ctx.cfg.service.did,
    versions: {
      '@atproto/pds': version('@atproto/pds'),
      '@atproto/dev-env': version('@atproto/dev-env'),
      node: process.versions.node,
    },
  }),
)
