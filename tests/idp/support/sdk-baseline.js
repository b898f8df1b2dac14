#!/usr/bin/env node
// For the benchmarks: Logto's JavaScript SDK doing what the app does between the callback and
// "signed in": the code exchange (@logto/js), the ID token check the SDK makes (jose's jwtVerify
// with the options @logto/client's DefaultJwtVerifier passes; that verifier is not exported),
// and userinfo (@logto/js), through @logto/client's requester on Node's keep-alive fetch.
// Reads "<code> <verifier> <redirect_uri>" lines on stdin; prints the milliseconds each took.
//   node support/sdk-baseline.js <issuer> <client id>
import readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { fetchTokenByAuthorizationCode, fetchUserInfo } from '@logto/js';
import { createRequester } from '@logto/client';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [issuer, clientId] = process.argv.slice(2);
const requester = createRequester(fetch);
const jwks = createRemoteJWKSet(new URL(`${issuer}/jwks`));
const clockTolerance = 300;

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  const [code, codeVerifier, redirectUri] = line.trim().split(' ');
  try {
    const started = performance.now();
    const tokens = await fetchTokenByAuthorizationCode(
      { clientId, tokenEndpoint: `${issuer}/token`, redirectUri, codeVerifier, code },
      requester,
    );
    const { payload } = await jwtVerify(tokens.idToken, jwks, { audience: clientId, issuer, clockTolerance });
    if (Math.abs((payload.iat ?? 0) - Date.now() / 1000) > clockTolerance) throw new Error('iat');
    await fetchUserInfo(`${issuer}/me`, tokens.accessToken, requester);
    process.stdout.write(`${(performance.now() - started).toFixed(3)}\n`);
  } catch (err) {
    process.stdout.write(`error ${String(err.message).replace(/\s+/g, ' ')}\n`);
  }
}
