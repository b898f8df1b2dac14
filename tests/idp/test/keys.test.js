import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeJwt, postForm, refresh, signedIn, startServer, verifyJwt,
} from '../support/harness.js';

const API = 'https://api.example.test';
const ORGS = 'urn:logto:scope:organizations';

let server;
let info;
before(async () => {
  server = await startServer({ IDP_TEST_HOOKS: '1' });
  info = server.info;
});
after(() => server?.stop());

const getJwks = async (i = info) => (await fetch(`${i.issuer}/jwks`)).json();
const rotate = (form = {}, i = info) => postForm(`${i.endpoint}/test/rotate-keys`, form);
const stats = async () => (await fetch(`${info.endpoint}/test/stats`)).json();
const kidOf = (jwt) => decodeJwt(jwt).header.kid;

// End session with an ID token as id_token_hint: 200 (the sign-out form) when its key is known.
async function endSessionStatus(idToken) {
  const url = new URL(`${info.issuer}/session/end`);
  url.searchParams.set('client_id', info.app_id);
  url.searchParams.set('id_token_hint', idToken);
  const res = await fetch(url, { redirect: 'manual' });
  await res.arrayBuffer();
  return res.status;
}

test('rotation with keep_previous (the default): the new key signs, the previous one stays in the JWKS', async () => {
  const old = await signedIn(info);
  const oldKid = kidOf(old.tokens.id_token);

  const res = await rotate();
  assert.equal(res.status, 200, res.text);
  const {
    kid, previous_kid: previousKid, jwks_kids: jwksKids, alg,
  } = res.json;
  assert.ok(kid);
  assert.equal(alg, 'ES384', 'without alg, the type of the current key');
  assert.notEqual(kid, oldKid);
  assert.equal(previousKid, oldKid);
  assert.deepEqual(jwksKids, [kid, oldKid]);

  const jwks = await getJwks();
  assert.deepEqual(jwks.keys.map((k) => k.kid), [kid, oldKid]);
  for (const key of jwks.keys) {
    assert.equal(key.alg, 'ES384');
    assert.equal(key.crv, 'P-384');
    assert.equal(key.d, undefined, 'public keys only');
  }
  // Signed before the rotation: still verifies, and is still good as an id_token_hint.
  assert.equal(verifyJwt(old.tokens.id_token, jwks).header.kid, oldKid);
  assert.equal(await endSessionStatus(old.tokens.id_token), 200);

  // A new sign-in, and a refresh of the grant from before the rotation: the new key.
  const fresh = await signedIn(info);
  assert.equal(verifyJwt(fresh.tokens.id_token, jwks).header.kid, kid);
  const refreshed = await refresh(info, old.tokens.refresh_token);
  assert.equal(refreshed.status, 200, refreshed.text);
  const { header, payload } = verifyJwt(refreshed.json.id_token, jwks);
  assert.equal(header.kid, kid);
  assert.equal(header.alg, 'ES384');
  assert.equal(payload.nonce, old.request.nonce);
});

test('a second grace rotation keeps only the key just before (Logto keeps two)', async () => {
  const first = (await rotate({ keep_previous: '1' })).json;
  const second = (await rotate({ keep_previous: '1' })).json;
  assert.equal(second.previous_kid, first.kid);
  assert.deepEqual(second.jwks_kids, [second.kid, first.kid]);
  assert.deepEqual((await getJwks()).keys.map((k) => k.kid), [second.kid, first.kid]);
});

test('keep_previous=0: only the new key is published; tokens signed before no longer verify', async () => {
  const old = await signedIn(info);
  const res = await rotate({ keep_previous: '0' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.previous_kid, kidOf(old.tokens.id_token));
  assert.deepEqual(res.json.jwks_kids, [res.json.kid]);

  const jwks = await getJwks();
  assert.deepEqual(jwks.keys.map((k) => k.kid), [res.json.kid]);
  assert.throws(() => verifyJwt(old.tokens.id_token, jwks), /no key with kid/);
  // oidc-provider checks id_token_hint against the same keys, as Logto does.
  assert.equal(await endSessionStatus(old.tokens.id_token), 400);

  const refreshed = await refresh(info, old.tokens.refresh_token);
  assert.equal(refreshed.status, 200, refreshed.text);
  assert.equal(verifyJwt(refreshed.json.id_token, jwks).header.kid, res.json.kid);
});

test('JWT access tokens for an API resource and organization tokens use the new key', async () => {
  const { tokens } = await signedIn(info, {
    scope: `openid profile offline_access ${ORGS} read:data`,
    resource: API,
  });
  const { kid } = (await rotate()).json;
  const jwks = await getJwks();

  const api = await refresh(info, tokens.refresh_token, { resource: API });
  assert.equal(api.status, 200, api.text);
  const at = verifyJwt(api.json.access_token, jwks);
  assert.equal(at.header.kid, kid);
  assert.equal(at.payload.aud, API);
  assert.equal(verifyJwt(api.json.id_token, jwks).header.kid, kid);

  const org = await refresh(info, api.json.refresh_token, { organization_id: 'org-acme' });
  assert.equal(org.status, 200, org.text);
  const orgToken = verifyJwt(org.json.access_token, jwks);
  assert.equal(orgToken.header.kid, kid);
  assert.equal(orgToken.payload.aud, 'urn:logto:organization:org-acme');
});

test('jwks_requests counts JWKS fetches, next to the other stats', async () => {
  const start = await stats();
  assert.equal(typeof start.refresh_requests, 'number');
  assert.equal(typeof start.max_in_flight, 'number');
  await getJwks();
  await getJwks();
  await fetch(`${info.issuer}/.well-known/openid-configuration`).then((r) => r.arrayBuffer());
  await rotate(); // not a fetch
  assert.equal((await stats()).jwks_requests, start.jwks_requests + 2);
});

test('keep_previous other than 1 or 0 is a 400 and rotates nothing', async () => {
  const before = (await getJwks()).keys.map((k) => k.kid);
  const res = await rotate({ keep_previous: 'yes' });
  assert.equal(res.status, 400);
  assert.equal(res.json.error, 'invalid_request');
  assert.deepEqual((await getJwks()).keys.map((k) => k.kid), before);
});

test('IDP_ID_TOKEN_ALG=RS256: rotation without alg makes a new RSA key', async () => {
  const rsa = await startServer({ IDP_ID_TOKEN_ALG: 'RS256', IDP_TEST_HOOKS: '1' });
  try {
    const res = await rotate({}, rsa.info);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.alg, 'RS256');
    const jwks = await getJwks(rsa.info);
    assert.deepEqual(jwks.keys.map((k) => [k.kid, k.kty, k.alg]), [
      [res.json.kid, 'RSA', undefined],
      [res.json.previous_kid, 'RSA', undefined],
    ]);
    const { tokens } = await signedIn(rsa.info);
    const { header } = verifyJwt(tokens.id_token, jwks);
    assert.deepEqual([header.alg, header.kid], ['RS256', res.json.kid]);
  } finally {
    await rsa.stop();
  }
});

test('without IDP_TEST_HOOKS there is no rotate route', async () => {
  const plain = await startServer();
  try {
    const res = await rotate({}, plain.info);
    assert.equal(res.status, 404);
    assert.equal((await getJwks(plain.info)).keys.length, 1);
  } finally {
    await plain.stop();
  }
});
