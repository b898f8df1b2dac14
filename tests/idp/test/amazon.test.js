import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, authRequest, decodeJwt, exchangeCode, signInWithAmazon, startServer, userinfo,
} from '../support/harness.js';

let server;
let info;
before(async () => { server = await startServer(); info = server.info; });
after(() => server?.stop());

async function viaAmazon(direct) {
  const browser = new Browser();
  const req = authRequest(info, direct ? { extra: { direct_sign_in: 'social:amazon' } } : {});
  const cb = await signInWithAmazon(info, browser, req, { direct });
  assert.equal(cb.searchParams.get('state'), req.state);
  assert.equal(cb.searchParams.get('iss'), info.issuer);
  const tokens = await exchangeCode(info, req, cb.searchParams.get('code'));
  assert.equal(tokens.status, 200, tokens.text);
  return tokens.json;
}

test('direct_sign_in=social:amazon goes straight to the Amazon stand-in', async () => {
  const browser = new Browser();
  const req = authRequest(info, { extra: { direct_sign_in: 'social:amazon' } });
  const page = await browser.navigate(req.url);
  assert.ok(page.url.startsWith(`${info.amazon.origin}/ap/oa?`), page.url);
  const q = new URL(page.url).searchParams;
  assert.equal(q.get('scope'), 'profile');
  assert.equal(q.get('response_type'), 'code');
  assert.equal(q.get('redirect_uri'), `${info.endpoint}/callback/amazon`);
  assert.ok(q.get('state'));
  for (const id of ['ap_email', 'ap_password', 'signInSubmit']) assert.match(page.text, new RegExp(`id="${id}"`));
});

test('signing in through Amazon links the identity: userinfo has identities.amazon', async () => {
  const tokens = await viaAmazon(true);
  assert.ok(tokens.refresh_token);
  const id = decodeJwt(tokens.id_token).payload;
  assert.equal(id.name, 'Amazon Shopper');
  assert.equal(id.email, 'amazon.user@example.com');
  assert.equal(id.identities, undefined);
  const me = (await userinfo(info, tokens.access_token)).json;
  assert.equal(me.sub, id.sub);
  assert.match(me.identities.amazon.userId, /^amzn1\.account\./);
  assert.deepEqual(me.identities.amazon.details, {
    id: me.identities.amazon.userId,
    name: 'Amazon Shopper',
    email: 'amazon.user@example.com',
    rawData: { user_id: me.identities.amazon.userId, name: 'Amazon Shopper', email: 'amazon.user@example.com' },
  });
  assert.deepEqual(me.sso_identities, []);

  // The same Amazon user through the sign-in page's link is the same Logto user.
  const again = await viaAmazon(false);
  assert.equal(decodeJwt(again.id_token).payload.sub, id.sub);
});

test('wrong Amazon password shows the Amazon page again', async () => {
  const browser = new Browser();
  const req = authRequest(info, { extra: { direct_sign_in: 'social:amazon' } });
  const page = await browser.navigate(req.url);
  const hidden = Object.fromEntries([...page.text.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1], m[2].replaceAll('&amp;', '&')]));
  const again = await browser.navigate(`${info.amazon.origin}/ap/signin`, {
    method: 'POST', form: { ...hidden, email: 'amazon.user@example.com', password: 'wrong' },
  });
  assert.equal(again.status, 200);
  assert.match(again.text, /id="ap_error"/);
});

test('a forged or replayed connector callback is refused', async () => {
  const res = await fetch(`${info.endpoint}/callback/amazon?code=x&state=forged`, { redirect: 'manual' });
  assert.equal(res.status, 400);
  assert.match(await res.text(), /id="error"/);
});

test('the stand-in token endpoint checks the client secret and the code', async () => {
  const res = await fetch(`${info.amazon.origin}/auth/o2/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code: 'x', redirect_uri: 'http://x', client_id: 'x', client_secret: 'y' }),
  });
  assert.equal(res.status, 401);
  const profile = await fetch(`${info.amazon.origin}/user/profile`, { headers: { Authorization: 'Bearer nope' } });
  assert.equal(profile.status, 401);
});
