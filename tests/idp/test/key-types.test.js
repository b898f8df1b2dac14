// Switching the signing key type, as a Logto admin does (Console, or
// `POST /api/configs/oidc/private-keys/rotate` with `signingKeyAlgorithm`); here
// `POST /test/rotate-keys` with `alg` (lib/keys.js).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
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
const discoveredAlgs = async (i = info) => (
  await (await fetch(`${i.issuer}/.well-known/openid-configuration`)).json()
).id_token_signing_alg_values_supported;
const rotate = (form = {}, i = info) => postForm(`${i.endpoint}/test/rotate-keys`, form);

// RFC 7638, computed here independently of lib/keys.js.
const thumbprint = (jwk) => {
  const members = jwk.kty === 'RSA'
    ? `{"e":"${jwk.e}","kty":"RSA","n":"${jwk.n}"}`
    : `{"crv":"${jwk.crv}","kty":"EC","x":"${jwk.x}","y":"${jwk.y}"}`;
  return createHash('sha256').update(members).digest('base64url');
};

// Logto's RSA key as published: 4096 bits, no `alg`, kid the thumbprint.
function assertLogtoRsaKey(key, kid) {
  assert.deepEqual(Object.keys(key).sort(), ['e', 'kid', 'kty', 'n', 'use']);
  assert.equal(key.kty, 'RSA');
  assert.equal(key.use, 'sig');
  assert.equal(key.kid, kid);
  assert.equal(Buffer.from(key.n, 'base64url').length * 8, 4096);
  assert.equal(key.kid, thumbprint(key));
}

function assertLogtoEcKey(key, kid) {
  assert.deepEqual(Object.keys(key).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
  assert.deepEqual([key.kty, key.crv, key.alg, key.use], ['EC', 'P-384', 'ES384', 'sig']);
  assert.equal(key.kid, kid);
  assert.equal(key.kid, thumbprint(key));
}

async function endSessionStatus(idToken) {
  const url = new URL(`${info.issuer}/session/end`);
  url.searchParams.set('client_id', info.app_id);
  url.searchParams.set('id_token_hint', idToken);
  const res = await fetch(url, { redirect: 'manual' });
  await res.arrayBuffer();
  return res.status;
}

// ID token, JWT access token for an API and organization token of a refresh: all `alg`, `kid`.
async function assertRefreshSignedWith(refreshToken, jwks, { alg, kid, nonce }) {
  const api = await refresh(info, refreshToken, { resource: API });
  assert.equal(api.status, 200, api.text);
  const id = verifyJwt(api.json.id_token, jwks);
  assert.deepEqual([id.header.alg, id.header.kid], [alg, kid]);
  if (nonce) assert.equal(id.payload.nonce, nonce);
  const at = verifyJwt(api.json.access_token, jwks);
  assert.deepEqual([at.header.alg, at.header.kid, at.payload.aud], [alg, kid, API]);

  const org = await refresh(info, api.json.refresh_token, { organization_id: 'org-acme' });
  assert.equal(org.status, 200, org.text);
  const orgToken = verifyJwt(org.json.access_token, jwks);
  assert.deepEqual([orgToken.header.alg, orgToken.header.kid], [alg, kid]);
  assert.equal(orgToken.payload.aud, 'urn:logto:organization:org-acme');
  return org.json.refresh_token;
}

test('EC → RSA → EC, as a Logto admin switching the key type', async () => {
  // The start: one EC key, kid its thumbprint; discovery lists ES384 alone.
  const scope = `openid profile offline_access ${ORGS} read:data`;
  const before = await signedIn(info, { scope, resource: API });
  const ecKid = decodeJwt(before.tokens.id_token).header.kid;
  const start = await getJwks();
  assert.equal(start.keys.length, 1);
  assertLogtoEcKey(start.keys[0], ecKid);
  assert.deepEqual(await discoveredAlgs(), ['ES384']);

  // To RSA, keeping the EC key (the grace period).
  const toRsa = await rotate({ alg: 'RS256', keep_previous: '1' });
  assert.equal(toRsa.status, 200, toRsa.text);
  const rsaKid = toRsa.json.kid;
  assert.deepEqual(toRsa.json, {
    kid: rsaKid, previous_kid: ecKid, jwks_kids: [rsaKid, ecKid], alg: 'RS256',
  });
  // oidc-provider's list for Logto's keys [RSA (current), EC]: each key's algorithms, in key order.
  assert.deepEqual(await discoveredAlgs(), ['PS256', 'RS256', 'ES384']);
  const mixed = await getJwks();
  assert.equal(mixed.keys.length, 2);
  assertLogtoRsaKey(mixed.keys[0], rsaKid);
  assertLogtoEcKey(mixed.keys[1], ecKid);

  // Signed before: still verifies. As id_token_hint it no longer passes: oidc-provider checks a
  // hint with the client's current algorithm, RS256 now (as at Logto, whose reloaded tenant
  // registers the app with the new key's algorithm).
  assert.equal(verifyJwt(before.tokens.id_token, mixed).header.alg, 'ES384');
  assert.equal(await endSessionStatus(before.tokens.id_token), 400);

  // A new sign-in, and a refresh of the grant from before: RS256 with the new key.
  const fresh = await signedIn(info, { scope, resource: API });
  const id = verifyJwt(fresh.tokens.id_token, mixed);
  assert.deepEqual([id.header.alg, id.header.kid], ['RS256', rsaKid]);
  assert.equal(await endSessionStatus(fresh.tokens.id_token), 200);
  const afterRsa = await assertRefreshSignedWith(before.tokens.refresh_token, mixed, {
    alg: 'RS256', kid: rsaKid, nonce: before.request.nonce,
  });

  // Back to EC, keeping the RSA key.
  const toEc = await rotate({ alg: 'ES384' });
  assert.equal(toEc.status, 200, toEc.text);
  const ecKid2 = toEc.json.kid;
  assert.deepEqual(toEc.json, {
    kid: ecKid2, previous_kid: rsaKid, jwks_kids: [ecKid2, rsaKid], alg: 'ES384',
  });
  assert.notEqual(ecKid2, ecKid);
  assert.deepEqual(await discoveredAlgs(), ['ES384', 'PS256', 'RS256']);
  const back = await getJwks();
  assertLogtoEcKey(back.keys[0], ecKid2);
  assertLogtoRsaKey(back.keys[1], rsaKid);

  const again = await signedIn(info);
  const id2 = verifyJwt(again.tokens.id_token, back);
  assert.deepEqual([id2.header.alg, id2.header.kid], ['ES384', ecKid2]);
  await assertRefreshSignedWith(afterRsa, back, { alg: 'ES384', kid: ecKid2 });

  // Without alg: the current type (EC); without the previous key, the RSA algorithms go.
  const alone = await rotate({ keep_previous: '0' });
  assert.equal(alone.status, 200, alone.text);
  assert.equal(alone.json.alg, 'ES384');
  assert.deepEqual(alone.json.jwks_kids, [alone.json.kid]);
  assert.deepEqual(await discoveredAlgs(), ['ES384']);
  assertLogtoEcKey((await getJwks()).keys[0], alone.json.kid);
});

test('alg other than ES384 or RS256 is a 400 and rotates nothing', async () => {
  const kids = (await getJwks()).keys.map((k) => k.kid);
  for (const alg of ['HS256', 'PS256', 'es384', '']) {
    const res = await rotate({ alg });
    assert.equal(res.status, 400, `alg=${alg}`);
    assert.equal(res.json.error, 'invalid_request');
  }
  assert.deepEqual((await getJwks()).keys.map((k) => k.kid), kids);
});

test('IDP_ID_TOKEN_ALG=RS256: one RSA 4096 key without alg; RSA → EC with keep_previous=0', async () => {
  const rsa = await startServer({ IDP_ID_TOKEN_ALG: 'RS256', IDP_TEST_HOOKS: '1' });
  try {
    const jwks = await getJwks(rsa.info);
    assert.equal(jwks.keys.length, 1);
    assertLogtoRsaKey(jwks.keys[0], jwks.keys[0].kid);
    assert.deepEqual(await discoveredAlgs(rsa.info), ['PS256', 'RS256']);
    const { tokens } = await signedIn(rsa.info);
    const { header } = verifyJwt(tokens.id_token, jwks);
    assert.deepEqual([header.alg, header.kid], ['RS256', jwks.keys[0].kid]);

    const res = await rotate({ alg: 'ES384', keep_previous: '0' }, rsa.info);
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.alg, 'ES384');
    assert.deepEqual(await discoveredAlgs(rsa.info), ['ES384']);
    const ec = await getJwks(rsa.info);
    assert.equal(ec.keys.length, 1);
    assertLogtoEcKey(ec.keys[0], res.json.kid);
    const refreshed = await refresh(rsa.info, tokens.refresh_token);
    assert.equal(refreshed.status, 200, refreshed.text);
    const id = verifyJwt(refreshed.json.id_token, ec);
    assert.deepEqual([id.header.alg, id.header.kid], ['ES384', res.json.kid]);
  } finally {
    await rsa.stop();
  }
});
