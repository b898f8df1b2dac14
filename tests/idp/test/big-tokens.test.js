// carol and dave: users whose ID tokens are big (about 8 KB and 16 KB), as real Logto's grow with
// organizations, organization roles and user roles.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeJwt, refresh, signedIn, startServer, userinfo, verifyJwt,
} from '../support/harness.js';

const ORGS = 'urn:logto:scope:organizations';
const ORG_ROLES = 'urn:logto:scope:organization_roles';
const BIG_SCOPE = `openid profile email offline_access ${ORGS} ${ORG_ROLES} roles`;
const REGISTERED = 'http://127.0.0.1:45688/signed-out';

const carol = { username: 'carol', password: 'carol-password-1' };
const dave = { username: 'dave', password: 'dave-password-1' };
const orgId = (n) => `org-${String(n).padStart(4, '0')}`;

let server;
let info;
let jwks;
before(async () => {
  server = await startServer({ IDP_ACCESS_TOKEN_TTL: '120', IDP_POST_LOGOUT_REDIRECT_URIS: REGISTERED });
  info = server.info;
  jwks = await (await fetch(`${info.issuer}/jwks`)).json();
});
after(() => server?.stop());

test('the JSON line appends carol and dave after alice and bob', () => {
  assert.deepEqual(info.users.map((u) => u.username), ['alice', 'bob', 'carol', 'dave']);
  assert.deepEqual(info.users[2], {
    username: 'carol', password: 'carol-password-1', name: 'Carol Example', email: 'carol@example.com',
  });
  assert.deepEqual(info.users[3], {
    username: 'dave', password: 'dave-password-1', name: 'Dave Example', email: 'dave@example.com',
  });
  for (let n = 1; n <= 270; n += 1) assert.ok(info.organizations.includes(orgId(n)), orgId(n));
});

for (const [user, count, roles, min, max] of [
  [carol, 130, 8, 7_500, 9_000],
  [dave, 270, 20, 15_000, 17_500],
]) {
  test(`${user.username}'s ID token is ${min}-${max} bytes, verifies, and is Logto-shaped (also refreshed)`, async () => {
    const { request, tokens } = await signedIn(info, { scope: BIG_SCOPE, ...user });
    for (const s of [ORGS, ORG_ROLES, 'roles']) assert.ok(tokens.scope.split(' ').includes(s), tokens.scope);
    const size = Buffer.byteLength(tokens.id_token);
    assert.ok(size >= min && size <= max, `${user.username}: ${size} bytes`);
    const { header, payload } = verifyJwt(tokens.id_token, jwks);
    assert.equal(header.alg, 'ES384');
    assert.equal(payload.username, user.username);
    assert.equal(payload.nonce, request.nonce);
    assert.deepEqual(payload.organizations, Array.from({ length: count }, (_, i) => orgId(i + 1)));
    assert.ok(payload.organization_roles.length > count);
    for (const r of payload.organization_roles) {
      const [org, role, ...rest] = r.split(':');
      assert.equal(rest.length, 0, r);
      assert.ok(payload.organizations.includes(org), r);
      assert.match(role, /^[a-z-]+$/, r);
    }
    assert.ok(payload.organization_roles.includes('org-0001:admin'));
    assert.ok(payload.organization_roles.includes('org-0001:member'));
    assert.equal(payload.roles.length, roles);
    for (const r of payload.roles) assert.match(r, /^[a-z-]+$/);
    assert.equal(payload.organization_data, undefined);

    const me = await userinfo(info, tokens.access_token);
    assert.equal(me.status, 200);
    assert.deepEqual(me.json.organizations, payload.organizations);
    assert.deepEqual(me.json.organization_roles, payload.organization_roles);
    assert.deepEqual(me.json.roles, payload.roles);
    assert.equal(me.json.organization_data.length, count);
    assert.deepEqual(me.json.organization_data[0], { id: 'org-0001', name: 'Organization 0001', description: null });

    const refreshed = await refresh(info, tokens.refresh_token);
    assert.equal(refreshed.status, 200, refreshed.text);
    const again = Buffer.byteLength(refreshed.json.id_token);
    assert.ok(again >= min && again <= max, `${user.username} refreshed: ${again} bytes`);
    assert.deepEqual(verifyJwt(refreshed.json.id_token, jwks).payload.organization_roles, payload.organization_roles);
  });

  test(`${user.username}'s organization tokens work for their organizations, as alice's`, async () => {
    const { tokens } = await signedIn(info, { scope: BIG_SCOPE, ...user });
    const last = orgId(count);
    const org = await refresh(info, tokens.refresh_token, { organization_id: last });
    assert.equal(org.status, 200, org.text);
    assert.equal(org.json.scope, '');
    assert.notEqual(org.json.refresh_token, tokens.refresh_token);
    const { payload } = verifyJwt(org.json.access_token, jwks);
    assert.equal(payload.aud, `urn:logto:organization:${last}`);
    assert.equal(payload.sub, decodeJwt(tokens.id_token).payload.sub);
    assert.equal(payload.exp - payload.iat, 120);
    assert.equal(payload.scope, undefined);
    assert.equal(decodeJwt(org.json.id_token).payload.organizations.length, count);

    // Not a member: org-acme, and (for carol) a numbered organization beyond hers.
    const outside = count < 270 ? orgId(count + 1) : 'org-acme';
    for (const id of ['org-acme', outside]) {
      const denied = await refresh(info, org.json.refresh_token, { organization_id: id });
      assert.equal(denied.status, 403, denied.text);
      assert.equal(denied.json.error, 'access_denied');
    }
  });
}

test('without the roles and organization scopes the big users\' ID tokens are small', async () => {
  const { tokens } = await signedIn(info, dave);
  const { payload } = decodeJwt(tokens.id_token);
  assert.equal(payload.organizations, undefined);
  assert.equal(payload.organization_roles, undefined);
  assert.equal(payload.roles, undefined);
  assert.ok(tokens.id_token.length < 1_500, String(tokens.id_token.length));
});

test('alice\'s and bob\'s claims are unchanged: no roles, alice in org-acme and org-globex', async () => {
  const a = await signedIn(info, { scope: BIG_SCOPE });
  const id = verifyJwt(a.tokens.id_token, jwks).payload;
  assert.equal(id.username, 'alice');
  assert.deepEqual(id.organizations, ['org-acme', 'org-globex']);
  assert.deepEqual(id.organization_roles, []);
  assert.deepEqual(id.roles, []);
  assert.ok(a.tokens.id_token.length < 1_500, String(a.tokens.id_token.length));
  const b = await signedIn(info, { scope: BIG_SCOPE, username: 'bob', password: 'bob-password-1' });
  const bid = decodeJwt(b.tokens.id_token).payload;
  assert.deepEqual(bid.organizations, []);
  assert.deepEqual(bid.organization_roles, []);
  assert.deepEqual(bid.roles, []);
});

test('as id_token_hint in a GET, dave\'s ID token is over Node\'s 16 KiB head limit (431); carol\'s passes', async () => {
  for (const [user, status] of [[dave, 431], [carol, 200]]) {
    const { browser, tokens } = await signedIn(info, { scope: BIG_SCOPE, ...user });
    const url = new URL(`${info.issuer}/session/end`);
    url.search = new URLSearchParams({
      client_id: info.app_id, id_token_hint: tokens.id_token, post_logout_redirect_uri: REGISTERED, state: 's1',
    }).toString();
    const res = await browser.request(url.href);
    const text = await res.text();
    assert.equal(res.status, status, user.username);
    if (status === 200) assert.match(text, /document\.forms\[0\]\.submit\(\)/);
  }
});
