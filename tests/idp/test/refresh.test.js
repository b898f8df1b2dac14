import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeJwt, postForm, refresh, signedIn, sleep, startServer, userinfo,
} from '../support/harness.js';

const WINDOW_S = 1;
let server;
let info;
before(async () => {
  server = await startServer({ IDP_REFRESH_REUSE_SECONDS: String(WINDOW_S), IDP_ACCESS_TOKEN_TTL: '120' });
  info = server.info;
});
after(() => server?.stop());

test('refresh rotates, gives a new ID token with the original nonce, and the access token TTL is configurable', async () => {
  const { request, tokens } = await signedIn(info);
  assert.equal(tokens.expires_in, 120);
  const r1 = await refresh(info, tokens.refresh_token);
  assert.equal(r1.status, 200, r1.text);
  assert.ok(r1.json.refresh_token);
  assert.notEqual(r1.json.refresh_token, tokens.refresh_token);
  assert.notEqual(r1.json.access_token, tokens.access_token);
  assert.equal(r1.json.expires_in, 120);
  const id = decodeJwt(r1.json.id_token).payload;
  assert.equal(id.nonce, request.nonce);
  assert.equal(id.name, 'Alice Example');
  assert.equal((await userinfo(info, r1.json.access_token)).status, 200);
});

test('a used refresh token is accepted within the reuse window', async () => {
  const { tokens } = await signedIn(info);
  const r1 = await refresh(info, tokens.refresh_token);
  assert.equal(r1.status, 200);
  const again = await refresh(info, tokens.refresh_token);
  assert.equal(again.status, 200, again.text);
  // the grant is still alive: the first rotation's token works
  const r2 = await refresh(info, r1.json.refresh_token);
  assert.equal(r2.status, 200, r2.text);
});

test('after the window, reusing a refresh token revokes the whole grant', async () => {
  const { tokens } = await signedIn(info);
  const r1 = await refresh(info, tokens.refresh_token);
  assert.equal(r1.status, 200);
  await sleep(WINDOW_S * 1000 + 300);
  const reuse = await refresh(info, tokens.refresh_token);
  assert.equal(reuse.status, 400);
  assert.equal(reuse.json.error, 'invalid_grant');
  const next = await refresh(info, r1.json.refresh_token);
  assert.equal(next.status, 400);
  assert.equal(next.json.error, 'invalid_grant');
  assert.equal((await userinfo(info, r1.json.access_token)).status, 401);
});

test('revoking the refresh token revokes the grant; unknown tokens answer 200', async () => {
  const { tokens } = await signedIn(info);
  const rev = await postForm(`${info.issuer}/token/revocation`, {
    token: tokens.refresh_token,
    token_type_hint: 'refresh_token',
    client_id: info.app_id,
  });
  assert.equal(rev.status, 200);
  assert.equal(rev.text, '');
  const after = await refresh(info, tokens.refresh_token);
  assert.equal(after.status, 400);
  assert.equal(after.json.error, 'invalid_grant');
  assert.equal((await userinfo(info, tokens.access_token)).status, 401);

  const unknown = await postForm(`${info.issuer}/token/revocation`, {
    token: 'not-a-token', token_type_hint: 'refresh_token', client_id: info.app_id,
  });
  assert.equal(unknown.status, 200);
});

test('refresh with a garbage token is invalid_grant', async () => {
  const res = await refresh(info, 'nope');
  assert.equal(res.status, 400);
  assert.equal(res.json.error, 'invalid_grant');
});
