import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { startServer } from '../support/harness.js';

let server;
before(async () => { server = await startServer(); });
after(() => server?.stop());

test('prints one JSON line describing the provider, then nothing else on stdout', async () => {
  const { info } = server;
  assert.match(info.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(info.issuer, `${info.endpoint}/oidc`);
  assert.equal(info.app_id, 'desktop-demo-app');
  assert.equal(info.alg, 'ES384');
  assert.deepEqual(info.resources, ['https://api.example.test']);
  const alice = info.users.find((u) => u.username === 'alice');
  assert.deepEqual(alice, { username: 'alice', password: 'alice-password-1', name: 'Alice Example', email: 'alice@example.com' });
  assert.ok(info.users.find((u) => u.username === 'bob'));
  assert.match(info.amazon.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(info.amazon.origin, info.endpoint);
  assert.deepEqual(info.amazon.users, [{ email: 'amazon.user@example.com', password: 'amazon-password-1', name: 'Amazon Shopper' }]);
  await fetch(`${info.issuer}/.well-known/openid-configuration`);
  assert.equal(server.stdout().trim().split('\n').length, 1);
});

test('discovery document is Logto-shaped', async () => {
  const { info } = server;
  const res = await fetch(`${info.issuer}/.well-known/openid-configuration`);
  assert.equal(res.status, 200);
  const d = await res.json();
  assert.equal(d.issuer, info.issuer);
  assert.equal(d.authorization_endpoint, `${info.issuer}/auth`);
  assert.equal(d.token_endpoint, `${info.issuer}/token`);
  assert.equal(d.userinfo_endpoint, `${info.issuer}/me`);
  assert.equal(d.jwks_uri, `${info.issuer}/jwks`);
  assert.equal(d.revocation_endpoint, `${info.issuer}/token/revocation`);
  assert.equal(d.end_session_endpoint, `${info.issuer}/session/end`);
  assert.equal(d.authorization_response_iss_parameter_supported, true);
  // Logto: the algorithms of the keys held (lib/keys.js).
  assert.deepEqual(d.id_token_signing_alg_values_supported, ['ES384']);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  assert.deepEqual(d.response_types_supported, ['code']);
  for (const s of ['openid', 'profile', 'offline_access', 'email', 'identities']) {
    assert.ok(d.scopes_supported.includes(s), s);
  }
  assert.equal(d.pushed_authorization_request_endpoint, undefined);
});

test('JWKS holds one P-384 key with a kid, and no private parts', async () => {
  const jwks = await (await fetch(`${server.info.issuer}/jwks`)).json();
  assert.equal(jwks.keys.length, 1);
  const [key] = jwks.keys;
  assert.equal(key.kty, 'EC');
  assert.equal(key.crv, 'P-384');
  assert.ok(key.kid);
  assert.equal(key.d, undefined);
});

test('listens on 127.0.0.1 only', async () => {
  const port = new URL(server.info.endpoint).port;
  await assert.rejects(fetch(`http://[::1]:${port}/oidc/jwks`));
});

test('IDP_ID_TOKEN_ALG=RS256 gives an older tenant with an RSA key', async () => {
  const old = await startServer({ IDP_ID_TOKEN_ALG: 'RS256', IDP_APP_ID: 'other-app', IDP_RESOURCES: '' });
  try {
    assert.equal(old.info.alg, 'RS256');
    assert.equal(old.info.app_id, 'other-app');
    assert.deepEqual(old.info.resources, []);
    const d = await (await fetch(`${old.info.issuer}/.well-known/openid-configuration`)).json();
    assert.deepEqual(d.id_token_signing_alg_values_supported, ['PS256', 'RS256']);
    const jwks = await (await fetch(`${old.info.issuer}/jwks`)).json();
    assert.equal(jwks.keys.length, 1);
    assert.equal(jwks.keys[0].kty, 'RSA');
    assert.equal(jwks.keys[0].alg, undefined, 'Logto publishes RSA keys without alg');
    assert.ok(jwks.keys[0].kid);
  } finally {
    await old.stop();
  }
});

test('IDP_EXIT_WITH_STDIN=1: exits when stdin closes', async () => {
  const s = await startServer();
  const exited = once(s.child, 'exit');
  s.child.stdin.end();
  const [code] = await exited;
  assert.equal(code, 0);
});

test('exits cleanly on SIGTERM', async () => {
  const s = await startServer();
  const exited = once(s.child, 'exit');
  s.child.kill('SIGTERM');
  const [code] = await exited;
  assert.equal(code, 0);
});
