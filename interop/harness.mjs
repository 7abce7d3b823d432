// What the interop scripts share: the tally of checks, an example binary run as a
// process (its `listening on ADDR` line), a loopback HTTP server, package versions.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

let failures = 0;
let passes = 0;

/** Records one check: `ok` passes; otherwise it fails, printing what it saw. */
export function check(ok, what, detail) {
  if (ok) {
    passes += 1;
    console.log(`  ok    ${what}`);
  } else {
    failures += 1;
    console.log(`  FAIL  ${what}${detail === undefined ? '' : `: ${JSON.stringify(detail)}`}`);
  }
}

/** Whether any check has failed so far. */
export const failed = () => failures > 0;

/** Prints the tally under `label` and exits: 0 only when something passed and nothing failed. */
export function finish(label) {
  console.log(`\n${label}: ${passes} passed, ${failures} failed`);
  process.exit(failures === 0 && passes > 0 ? 0 : 1);
}

/** The installed version of an npm package (read from its file: `exports` may hide it). */
export function version(name) {
  const url = new URL(`./node_modules/${name}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, 'utf8')).version;
}

/** Starts `binary` with these variables; resolves once it prints its address. */
export async function startExample(binary, env) {
  const child = spawn(binary, [], {
    env: { PATH: process.env.PATH, RUST_LOG: 'warn,jwks_auth=info', LISTEN_ADDR: '127.0.0.1:0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr = [];
  createInterface({ input: child.stderr }).on('line', (line) => {
    stderr.push(line);
    if (process.env.INTEROP_VERBOSE) console.error(`    [server] ${line}`);
  });
  const lines = createInterface({ input: child.stdout });
  const address = await Promise.race([
    (async () => {
      for await (const line of lines) {
        const m = /^listening on (\S+)$/.exec(line);
        if (m) return m[1];
      }
      throw new Error(`example exited before listening: ${stderr.join('\n')}`);
    })(),
    sleep(60_000).then(() => { throw new Error('example did not start within 60 s'); }),
  ]);
  return { base: `http://${address}`, child, stderr };
}

/** SIGTERM; resolves to whether it exited within 10 s (else it is killed). */
export async function stop(server) {
  server.child.kill('SIGTERM');
  if (server.child.exitCode !== null) return true;
  const exited = await Promise.race([
    once(server.child, 'exit').then(() => true),
    sleep(10_000).then(() => false),
  ]);
  if (!exited) server.child.kill('SIGKILL');
  return exited;
}

/** Starts an HTTP server on loopback; resolves to it and its base URL. */
export async function listen(handler) {
  const server = http.createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, base: `http://127.0.0.1:${server.address().port}` };
}
