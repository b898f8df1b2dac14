import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeJwt, refresh, signedIn, sleep, startServer, userinfo, verifyJwt,
} from '../support/harness.js';

const WINDOW_S = 1;
const ORGS = 'urn:logto:scope:organizations';
const ORG_ROLES = 'urn:logto:scope:organization_roles';
const ORG_SIGN_IN = `openid profile offline_access email ${ORGS} ${ORG_ROLES}`;
const API = 'https://api.example.test';

let server;
let info;
let jwks;
before(async () => {
  server = await startServer({ IDP_REFRESH_REUSE_SECONDS: String(WINDOW_S), IDP_ACCESS_TOKEN_TTL: '120' });
  info = server.info;
  jwks = await (await fetch(`${info.issuer}/jwks`)).json();
});
after(() => server?.stop());

const bob = { username: 'bob', password: 'bob-password-1' };

test('the JSON line lists the organizations; the scopes are supported', async () => {
  // alice's two, then carol's and dave's numbered ones (big-tokens.test.js).
  assert.deepEqual(info.organizations.slice(0, 2), ['org-acme', 'org-globex']);
  assert.equal(info.organizations.length, 2 + 270);
  assert.equal(info.organizations[2], 'org-0001');
  assert.equal(info.organizations.at(-1), 'org-0270');
  const d = await (await fetch(`${info.issuer}/.well-known/openid-configuration`)).json();
  for (const s of [ORGS, ORG_ROLES]) assert.ok(d.scopes_supported.includes(s), s);
  for (const c of ['organizations', 'organization_roles', 'organization_data']) {
    assert.ok(d.claims_supported.includes(c), c);
  }
});

test('with the organizations scopes, the ID token and userinfo name the organizations', async () => {
  const { tokens } = await signedIn(info, { scope: ORG_SIGN_IN });
  assert.ok(tokens.scope.split(' ').includes(ORGS), tokens.scope);
  assert.ok(tokens.scope.split(' ').includes(ORG_ROLES), tokens.scope);
  const id = decodeJwt(tokens.id_token).payload;
  assert.deepEqual(id.organizations, ['org-acme', 'org-globex']);
  assert.deepEqual(id.organization_roles, []);
  assert.equal(id.organization_data, undefined); // userinfo only, as Logto's default
  const me = await userinfo(info, tokens.access_token);
  assert.equal(me.status, 200);
  assert.deepEqual(me.json.organizations, ['org-acme', 'org-globex']);
  assert.deepEqual(me.json.organization_roles, []);
  assert.deepEqual(me.json.organization_data, [
    { id: 'org-acme', name: 'Acme', description: null },
    { id: 'org-globex', name: 'Globex', description: null },
  ]);

  const other = await signedIn(info, { scope: ORG_SIGN_IN, ...bob });
  assert.deepEqual(decodeJwt(other.tokens.id_token).payload.organizations, []);

  const plain = await signedIn(info);
  assert.equal(decodeJwt(plain.tokens.id_token).payload.organizations, undefined);
});

test('refresh with organization_id gives an organization JWT and rotates the refresh token', async () => {
  const { request, tokens } = await signedIn(info, { scope: ORG_SIGN_IN });
  const org = await refresh(info, tokens.refresh_token, { organization_id: 'org-acme' });
  assert.equal(org.status, 200, org.text);
  assert.equal(org.json.token_type, 'Bearer');
  assert.equal(org.json.expires_in, 120);
  assert.equal(org.json.scope, '');
  assert.ok(org.json.refresh_token);
  assert.notEqual(org.json.refresh_token, tokens.refresh_token);
  const { header, payload } = verifyJwt(org.json.access_token, jwks);
  assert.equal(header.alg, 'ES384');
  assert.equal(payload.aud, 'urn:logto:organization:org-acme');
  assert.equal(payload.iss, info.issuer);
  assert.equal(payload.client_id, info.app_id);
  assert.equal(payload.sub, decodeJwt(tokens.id_token).payload.sub);
  assert.equal(payload.exp - payload.iat, 120);
  assert.ok(payload.jti);
  assert.equal(payload.scope, undefined); // no organization permissions: no scope claim
  assert.equal(payload.organization_id, undefined);
  const id = decodeJwt(org.json.id_token).payload;
  assert.equal(id.nonce, request.nonce);
  assert.deepEqual(id.organizations, ['org-acme', 'org-globex']);

  // The rotated refresh token works for a normal refresh, then for the other organization.
  const normal = await refresh(info, org.json.refresh_token);
  assert.equal(normal.status, 200, normal.text);
  assert.notEqual(normal.json.refresh_token, org.json.refresh_token);
  assert.equal(normal.json.access_token.split('.').length, 1); // opaque, as before
  assert.equal((await userinfo(info, normal.json.access_token)).status, 200);
  const globex = await refresh(info, normal.json.refresh_token, { organization_id: 'org-globex' });
  assert.equal(globex.status, 200, globex.text);
  assert.equal(verifyJwt(globex.json.access_token, jwks).payload.aud, 'urn:logto:organization:org-globex');
});

test('organization_id with resource gives the API token with an organization_id claim', async () => {
  const { tokens } = await signedIn(info, { scope: `${ORG_SIGN_IN} read:data`, resource: API });
  const res = await refresh(info, tokens.refresh_token, { organization_id: 'org-acme', resource: API });
  assert.equal(res.status, 200, res.text);
  assert.notEqual(res.json.refresh_token, tokens.refresh_token);
  const { payload } = verifyJwt(res.json.access_token, jwks);
  assert.equal(payload.aud, API);
  assert.equal(payload.organization_id, 'org-acme');
  assert.equal(payload.scope, 'read:data');
  // and a non-member organization is refused there too
  const denied = await refresh(info, res.json.refresh_token, { organization_id: 'org-initech', resource: API });
  assert.equal(denied.status, 403, denied.text);
  assert.equal(denied.json.error, 'access_denied');
});

test('a non-member organization is refused (403 access_denied) and uses nothing up', async () => {
  const { tokens } = await signedIn(info, { scope: ORG_SIGN_IN });
  const unknown = await refresh(info, tokens.refresh_token, { organization_id: 'org-initech' });
  assert.equal(unknown.status, 403, unknown.text);
  assert.deepEqual(unknown.json, {
    error: 'access_denied',
    error_description: 'user is not a member of the organization',
  });

  const other = await signedIn(info, { scope: ORG_SIGN_IN, ...bob });
  const notMember = await refresh(info, other.tokens.refresh_token, { organization_id: 'org-acme' });
  assert.equal(notMember.status, 403, notMember.text);
  assert.equal(notMember.json.error, 'access_denied');

  // Not consumed: after the reuse window it still refreshes (a consumed one would revoke the grant).
  await sleep(WINDOW_S * 1000 + 300);
  const still = await refresh(info, tokens.refresh_token);
  assert.equal(still.status, 200, still.text);
});

test('without the organizations scope, organization_id is refused (403 insufficient_scope)', async () => {
  const { tokens } = await signedIn(info);
  const res = await refresh(info, tokens.refresh_token, { organization_id: 'org-acme' });
  assert.equal(res.status, 403, res.text);
  assert.deepEqual(res.json, {
    error: 'insufficient_scope',
    error_description: 'refresh token missing required scope',
    scope: ORGS,
  });
  // Membership is checked first, as in Logto.
  const unknown = await refresh(info, tokens.refresh_token, { organization_id: 'org-initech' });
  assert.equal(unknown.status, 403);
  assert.equal(unknown.json.error, 'access_denied');
  // The refresh token is untouched.
  const normal = await refresh(info, tokens.refresh_token);
  assert.equal(normal.status, 200, normal.text);
});

test('an organization refresh rotates like any other: late reuse revokes the grant', async () => {
  const { tokens } = await signedIn(info, { scope: ORG_SIGN_IN });
  const org = await refresh(info, tokens.refresh_token, { organization_id: 'org-acme' });
  assert.equal(org.status, 200, org.text);
  // within the window the used token is still accepted, for an organization too
  const again = await refresh(info, tokens.refresh_token, { organization_id: 'org-acme' });
  assert.equal(again.status, 200, again.text);
  await sleep(WINDOW_S * 1000 + 300);
  const late = await refresh(info, tokens.refresh_token, { organization_id: 'org-acme' });
  assert.equal(late.status, 400);
  assert.equal(late.json.error, 'invalid_grant');
  const next = await refresh(info, org.json.refresh_token);
  assert.equal(next.status, 400);
  assert.equal(next.json.error, 'invalid_grant');
});

test('an empty organization_id is ignored, as Logto does', async () => {
  const { tokens } = await signedIn(info);
  const res = await refresh(info, tokens.refresh_token, { organization_id: '' });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.access_token.split('.').length, 1);
});
