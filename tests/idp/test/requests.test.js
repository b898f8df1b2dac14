// IDP_TEST_HOOKS=1: the request log (`GET /test/requests`, `POST /test/requests/clear`).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  postForm, refresh, signedIn, startServer, userinfo, statusesWithoutHooks,
} from '../support/harness.js';

const sha256 = (value) => createHash('sha256').update(value).digest('hex');

let server;
let info;
before(async () => {
  server = await startServer({ IDP_TEST_HOOKS: '1' });
  info = server.info;
});
after(() => server?.stop());

const requests = async () => {
  const res = await fetch(`${info.endpoint}/test/requests`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(Object.keys(body), ['requests']);
  return body.requests;
};
const clear = async () => {
  const res = await fetch(`${info.endpoint}/test/requests/clear`, { method: 'POST' });
  assert.equal(res.status, 204);
};

test('records a refresh grant and a revocation with the SHA-256 of their token, never a token', async () => {
  const { tokens } = await signedIn(info);
  await clear();
  const started = Date.now();
  const r1 = await refresh(info, tokens.refresh_token);
  assert.equal(r1.status, 200, r1.text);
  assert.equal((await userinfo(info, r1.json.access_token)).status, 200);
  const rev = await postForm(`${info.issuer}/token/revocation`, {
    token: r1.json.refresh_token, token_type_hint: 'refresh_token', client_id: info.app_id,
  });
  assert.equal(rev.status, 200);
  const late = await refresh(info, r1.json.refresh_token); // revoked: invalid_grant
  assert.equal(late.status, 400);
  await fetch(`${info.issuer}/jwks`);
  await fetch(`${info.issuer}/.well-known/openid-configuration`);

  const log = await requests();
  assert.deepEqual(log.map(({ at, ...rest }) => rest), [
    { method: 'POST', path: '/oidc/token', grant_type: 'refresh_token', status: 200, token_sha256: sha256(tokens.refresh_token) },
    { method: 'GET', path: '/oidc/me', status: 200 },
    {
      method: 'POST', path: '/oidc/token/revocation', token_type_hint: 'refresh_token', status: 200, token_sha256: sha256(r1.json.refresh_token),
    },
    { method: 'POST', path: '/oidc/token', grant_type: 'refresh_token', status: 400, token_sha256: sha256(r1.json.refresh_token) },
    { method: 'GET', path: '/oidc/jwks', status: 200 },
    { method: 'GET', path: '/oidc/.well-known/openid-configuration', status: 200 },
  ]);
  for (const { at } of log) {
    assert.ok(Number.isInteger(at) && at >= started - 1000 && at <= Date.now(), String(at));
  }
  assert.deepEqual(log.map((e) => e.at), log.map((e) => e.at).sort((a, b) => a - b));

  const raw = JSON.stringify(log);
  for (const secret of [tokens.refresh_token, tokens.access_token, r1.json.refresh_token, r1.json.access_token]) {
    assert.ok(!raw.includes(secret), 'a raw token is in the log');
  }
});

test('records the code exchange (grant_type only), revocation without a hint, and session end', async () => {
  await clear();
  const { tokens, browser } = await signedIn(info);
  const rev = await postForm(`${info.issuer}/token/revocation`, { token: tokens.access_token, client_id: info.app_id });
  assert.equal(rev.status, 200);
  const end = await browser.request(`${info.issuer}/session/end?client_id=${info.app_id}`);
  await end.arrayBuffer();

  const log = await requests();
  const code = log.find((e) => e.path === '/oidc/token');
  assert.deepEqual({ ...code, at: 0 }, { at: 0, method: 'POST', path: '/oidc/token', grant_type: 'authorization_code', status: 200 });
  const revocation = log.find((e) => e.path === '/oidc/token/revocation');
  assert.deepEqual({ ...revocation, at: 0 }, {
    at: 0, method: 'POST', path: '/oidc/token/revocation', status: 200, token_sha256: sha256(tokens.access_token),
  });
  const ended = log.find((e) => e.path === '/oidc/session/end');
  assert.deepEqual({ ...ended, at: 0 }, { at: 0, method: 'GET', path: '/oidc/session/end', status: 200 });
  // Nothing else is logged: not the authorization endpoint, nor the sign-in pages.
  assert.deepEqual(log.map((e) => e.path), ['/oidc/token', '/oidc/token/revocation', '/oidc/session/end']);
});

test('a token request failed by /test/fail-token is logged (503) with its refresh token hash, and oidc-provider still reads the next body', async () => {
  const { tokens } = await signedIn(info);
  await clear();
  const fail = await postForm(`${info.endpoint}/test/fail-token`, { count: '1' });
  assert.equal(fail.status, 204);
  const failed = await refresh(info, tokens.refresh_token);
  assert.equal(failed.status, 503);
  const ok = await refresh(info, tokens.refresh_token);
  assert.equal(ok.status, 200, ok.text);
  const log = await requests();
  assert.deepEqual(log.map(({ at, ...rest }) => rest), [
    { method: 'POST', path: '/oidc/token', grant_type: 'refresh_token', status: 503, token_sha256: sha256(tokens.refresh_token) },
    { method: 'POST', path: '/oidc/token', grant_type: 'refresh_token', status: 200, token_sha256: sha256(tokens.refresh_token) },
  ]);
});

test('clear empties the log', async () => {
  await fetch(`${info.issuer}/jwks`);
  assert.ok((await requests()).length > 0);
  await clear();
  assert.deepEqual(await requests(), []);
  // reading the log is not itself logged
  assert.deepEqual(await requests(), []);
});

test('without IDP_TEST_HOOKS the request log routes are 404', async () => {
  const statuses = await statusesWithoutHooks([['GET', '/test/requests'], ['POST', '/test/requests/clear']]);
  assert.deepEqual(statuses, [404, 404]);
});
