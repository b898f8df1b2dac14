import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, authRequest, decodeJwt, exchangeCode, refresh, signInWithPassword, signedIn,
  startServer, userinfo, verifyJwt,
} from '../support/harness.js';

let server;
let info;
let jwks;
before(async () => {
  server = await startServer();
  info = server.info;
  jwks = await (await fetch(`${info.issuer}/jwks`)).json();
});
after(() => server?.stop());

test('token response: opaque access token, ES384 ID token with kid and Logto claims, refresh token', async () => {
  const { request, tokens } = await signedIn(info);
  assert.equal(tokens.token_type, 'Bearer');
  assert.equal(tokens.expires_in, 3600);
  assert.ok(tokens.refresh_token);
  assert.equal(tokens.access_token.split('.').length, 1, 'opaque access token');
  assert.deepEqual(new Set(tokens.scope.split(' ')), new Set(['openid', 'profile', 'offline_access', 'email', 'identities']));

  const { header, payload } = verifyJwt(tokens.id_token, jwks);
  assert.equal(header.alg, 'ES384');
  assert.equal(header.kid, jwks.keys[0].kid);
  assert.equal(payload.iss, info.issuer);
  assert.equal(payload.aud, info.app_id);
  assert.equal(payload.nonce, request.nonce);
  assert.match(payload.sub, /^[a-z0-9]{12}$/);
  assert.equal(payload.name, 'Alice Example');
  assert.equal(payload.username, 'alice');
  assert.equal(payload.email, 'alice@example.com');
  assert.equal(payload.email_verified, true);
  assert.equal(payload.picture, null);
  assert.ok(payload.created_at > 1e12, 'created_at in epoch milliseconds');
  assert.ok(payload.updated_at > 1e12, 'updated_at in epoch milliseconds');
  assert.equal(payload.exp - payload.iat, 3600);
  for (const absent of ['identities', 'sso_identities', 'at_hash', 'sid', 'auth_time']) {
    assert.equal(payload[absent], undefined, absent);
  }
});

test('userinfo: profile claims, identities {} and sso_identities [] for a password user', async () => {
  const { tokens } = await signedIn(info);
  const me = await userinfo(info, tokens.access_token);
  assert.equal(me.status, 200);
  assert.equal(me.json.sub, decodeJwt(tokens.id_token).payload.sub);
  assert.equal(me.json.name, 'Alice Example');
  assert.equal(me.json.email, 'alice@example.com');
  assert.deepEqual(me.json.identities, {});
  assert.deepEqual(me.json.sso_identities, []);
});

test('bob has a picture URL served by the provider', async () => {
  const { tokens } = await signedIn(info, { username: 'bob', password: 'bob-password-1' });
  const { payload } = decodeJwt(tokens.id_token);
  assert.equal(payload.name, 'Bob Example');
  assert.equal(payload.picture, `${info.endpoint}/avatars/bob.svg`);
  const res = await fetch(payload.picture);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /image\/svg\+xml/);
  assert.notEqual(payload.sub, decodeJwt((await signedIn(info)).tokens.id_token).payload.sub);
});

test('no refresh token without prompt=consent', async () => {
  const { tokens } = await signedIn(info, { prompt: null });
  assert.equal(tokens.refresh_token, undefined);
  assert.ok(!tokens.scope.split(' ').includes('offline_access'));
  assert.ok(tokens.id_token);
});

test('unknown scopes are ignored silently', async () => {
  const { tokens } = await signedIn(info, { scope: 'openid profile offline_access made:up another' });
  assert.ok(tokens.refresh_token);
  assert.deepEqual(new Set(tokens.scope.split(' ')), new Set(['openid', 'profile', 'offline_access']));
});

test('wrong verifier or redirect_uri: invalid_grant without using the code up; reuse: invalid_grant', async () => {
  const browser = new Browser();
  const req = authRequest(info, { port: 41234 });
  const code = (await signInWithPassword(info, browser, req)).searchParams.get('code');

  const badVerifier = await exchangeCode(info, req, code, { code_verifier: 'x'.repeat(43) });
  assert.equal(badVerifier.status, 400);
  assert.equal(badVerifier.json.error, 'invalid_grant');

  const badPort = await exchangeCode(info, req, code, { redirect_uri: 'http://127.0.0.1:41235/callback' });
  assert.equal(badPort.status, 400);
  assert.equal(badPort.json.error, 'invalid_grant');

  const noVerifier = await exchangeCode(info, req, code, { code_verifier: undefined });
  assert.equal(noVerifier.status, 400);
  assert.equal(noVerifier.json.error, 'invalid_grant');

  const ok = await exchangeCode(info, req, code);
  assert.equal(ok.status, 200);

  const again = await exchangeCode(info, req, code);
  assert.equal(again.status, 400);
  assert.equal(again.json.error, 'invalid_grant');
});

test('a resource indicator gives a JWT access token for that API, and refresh can ask for it', async () => {
  const resource = info.resources[0];
  const { tokens } = await signedIn(info, {
    resource,
    scope: 'openid profile offline_access read:data',
  });
  // No resource at the token endpoint: opaque, for userinfo.
  assert.equal(tokens.access_token.split('.').length, 1);
  assert.equal((await userinfo(info, tokens.access_token)).status, 200);

  const api = await refresh(info, tokens.refresh_token, { resource });
  assert.equal(api.status, 200, api.text);
  const { header, payload } = verifyJwt(api.json.access_token, jwks);
  assert.equal(header.alg, 'ES384');
  assert.equal(payload.aud, resource);
  assert.equal(payload.iss, info.issuer);
  assert.equal(payload.client_id, info.app_id);
  assert.equal(payload.scope, 'read:data');
  assert.ok(api.json.refresh_token);
  assert.notEqual(api.json.refresh_token, tokens.refresh_token);

  const unknown = await refresh(info, api.json.refresh_token, { resource: 'https://unknown.example.test' });
  assert.equal(unknown.status, 400);
  assert.equal(unknown.json.error, 'invalid_target');
});

test('the resource can also be asked for at the code exchange', async () => {
  const resource = info.resources[0];
  const browser = new Browser();
  const req = authRequest(info, { resource, scope: 'openid offline_access read:data' });
  const code = (await signInWithPassword(info, browser, req)).searchParams.get('code');
  const res = await exchangeCode(info, req, code, { resource });
  assert.equal(res.status, 200, res.text);
  assert.equal(decodeJwt(res.json.access_token).payload.aud, resource);
});

test('IDP_ID_TOKEN_ALG=RS256: ID tokens are RS256', async () => {
  const old = await startServer({ IDP_ID_TOKEN_ALG: 'RS256' });
  try {
    const oldJwks = await (await fetch(`${old.info.issuer}/jwks`)).json();
    const { tokens } = await signedIn(old.info);
    const { header } = verifyJwt(tokens.id_token, oldJwks);
    assert.equal(header.alg, 'RS256');
    assert.ok(header.kid);
  } finally {
    await old.stop();
  }
});
