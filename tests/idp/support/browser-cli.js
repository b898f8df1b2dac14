#!/usr/bin/env node
// A scripted browser for benchmarks: reads authorization URLs, one a line, on stdin; signs in
// on the provider's own page as the given user (once: the browser keeps the provider's session,
// so later sign-ins return at once, as a real browser's would); prints the callback URL the
// provider redirected to, one a line, without requesting it (the caller does, and times it).
//   node support/browser-cli.js <username> <password>
import readline from 'node:readline';
import { Browser, signInWithPassword } from './harness.js';

const [username = 'alice', password = 'alice-password-1'] = process.argv.slice(2);
const browser = new Browser();
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  try {
    const url = new URL(line.trim());
    const redirectUri = url.searchParams.get('redirect_uri') ?? '';
    const callback = await signInWithPassword({}, browser, { url: url.href, redirectUri }, { username, password });
    process.stdout.write(`${callback.href}\n`);
  } catch (err) {
    process.stdout.write(`error ${String(err.message).replace(/\s+/g, ' ')}\n`);
  }
}
