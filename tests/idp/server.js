#!/usr/bin/env node
// Starts the Logto-faithful provider and its Amazon stand-in on loopback, prints one JSON line
// describing them on stdout, logs to stderr, and runs until SIGTERM/SIGINT (or, with
// IDP_EXIT_WITH_STDIN=1, until stdin closes).
import { optionsFromEnv, startIdp } from './lib/idp.js';

const log = (msg) => process.stderr.write(`[idp] ${msg}\n`);

let idp;
let stopping = false;
async function stop(reason) {
  if (stopping) return;
  stopping = true;
  log(`stopping (${reason})`);
  const force = setTimeout(() => process.exit(0), 3000);
  force.unref();
  if (idp) await idp.close();
  process.exit(0);
}

// Handlers first, so a signal that follows the JSON line at once is handled.
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
if (process.env.IDP_EXIT_WITH_STDIN === '1') {
  process.stdin.on('end', () => stop('stdin closed'));
  process.stdin.on('error', () => stop('stdin error'));
  process.stdin.resume();
}

try {
  idp = await startIdp({ ...optionsFromEnv(process.env), log });
} catch (err) {
  log(`failed to start: ${err.message}`);
  process.exit(1);
}
if (stopping) {
  await idp.close();
  process.exit(0);
}

process.stdout.write(`${JSON.stringify(idp.info)}\n`);
