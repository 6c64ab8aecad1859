// Where the scenario's page comes from: `atmls serve --web-dir web/dist` (at /web/ on the
// server's own origin) when the binary has that option. A binary built before it (which
// also answered no CORS) is put behind a loopback front of the test: the front serves the
// same files at the same path with the same Content-Security-Policy as
// crates/atmls-xrpc/src/static_files.rs and forwards everything else (HTTP and WebSocket
// upgrades) to the server, whose `--public-url` is the front's origin. Either way the whole
// scenario runs on one origin; the test prints which way the page was served.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { createServer, request, type Server as HttpServer } from "node:http";
import { connect } from "node:net";
import { join } from "node:path";

const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
  "connect-src 'self' http: https: ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'";

const TYPES: Record<string, string> = { html: "text/html; charset=utf-8", js: "text/javascript", map: "application/json", css: "text/css" };

/** Whether `bin serve` has `--web-dir`. */
export function serveHasWebDir(bin: string): boolean {
  return execFileSync(bin, ["serve", "--help"], { encoding: "utf8", timeout: 20_000 }).includes("--web-dir");
}

/** A front on 127.0.0.1: `dir`'s files at `/web/<name>` (index.html also at `/web/`), the rest forwarded to `upstream()`. */
export async function servePage(dir: string, upstream: () => string | undefined): Promise<{ origin: string; close(): Promise<void> }> {
  const files = new Map<string, Uint8Array>();
  for (const name of readdirSync(dir)) files.set(name, readFileSync(join(dir, name)));
  const server: HttpServer = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const name = path === "/web/" ? "index.html" : path.startsWith("/web/") ? path.slice(5) : "";
    const body = files.get(name);
    const up = upstream();
    if (body === undefined && up !== undefined) {
      const target = new URL(up);
      const fwd = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      fwd.on("error", () => res.writeHead(502).end());
      req.pipe(fwd);
      return;
    }
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    const type = TYPES[name.split(".").pop() ?? ""] ?? "application/octet-stream";
    res.writeHead(200, { "content-type": type, "cache-control": "no-cache", ...(type.startsWith("text/html") ? { "content-security-policy": CSP } : {}) });
    res.end(body);
  });
  server.on("upgrade", (req, socket, head) => {
    const up = upstream();
    if (up === undefined) return socket.destroy();
    const target = new URL(up);
    const out = connect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`, ...Object.entries(req.headers).map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(", ") : v}`)];
      out.write(lines.join("\r\n") + "\r\n\r\n");
      out.write(head);
      out.pipe(socket);
      socket.pipe(out);
    });
    out.on("error", () => socket.destroy());
    socket.on("error", () => out.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return { origin: `http://127.0.0.1:${address.port}`, close: () => new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  }) };
}
