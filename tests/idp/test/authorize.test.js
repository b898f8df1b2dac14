import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  Browser, authRequest, formAction, signInWithPassword, startServer,
} from '../support/harness.js';

let server;
let info;
before(async () => { server = await startServer(); info = server.info; });
after(() => server?.stop());

test('code + PKCE sign-in at any 127.0.0.1 port returns code, state and iss', async () => {
  for (const port of [53123, 40001]) {
    const browser = new Browser();
    const req = authRequest(info, { port });
    const cb = await signInWithPassword(info, browser, req);
    assert.equal(cb.origin, `http://127.0.0.1:${port}`);
    assert.equal(cb.pathname, '/callback');
    assert.match(cb.searchParams.get('code'), /^[A-Za-z0-9_-]{43}$/);
    assert.equal(cb.searchParams.get('state'), req.state);
    assert.equal(cb.searchParams.get('iss'), info.issuer);
  }
});

test('the sign-in page has the contract element ids and no demo users by default', async () => {
  const browser = new Browser();
  const req = authRequest(info);
  const page = await browser.navigate(req.url);
  assert.equal(page.status, 200);
  assert.match(page.url, /\/interaction\/[A-Za-z0-9_-]+$/);
  for (const id of ['username', 'password', 'submit', 'sign-in-amazon', 'deny']) {
    assert.match(page.text, new RegExp(`id="${id}"`), id);
  }
  assert.match(page.text, /<input id="password" name="password" type="password"/);
  assert.doesNotMatch(page.text, /alice-password-1/);
  assert.doesNotMatch(page.text, /<script/);
});

test('wrong password shows the form again with #error', async () => {
  const browser = new Browser();
  const req = authRequest(info);
  const page = await browser.navigate(req.url);
  const again = await browser.navigate(new URL(formAction(page.text, 'sign-in-form'), page.url).href, {
    method: 'POST', form: { username: 'alice', password: 'nope' },
  });
  assert.equal(again.status, 200);
  assert.match(again.text, /<p id="error">/);
  assert.match(again.text, /id="username"/);
  // and the right password still works in the same interaction
  const done = await browser.navigate(new URL(formAction(again.text, 'sign-in-form'), again.url).href, {
    method: 'POST', form: { username: 'alice', password: 'alice-password-1' }, stopAt: req.redirectUri,
  });
  assert.ok(done.callback.searchParams.get('code'));
});

test('deny ends the sign-in with access_denied, state and iss', async () => {
  const browser = new Browser();
  const req = authRequest(info);
  const page = await browser.navigate(req.url);
  const done = await browser.navigate(new URL(formAction(page.text, 'deny-form'), page.url).href, {
    method: 'POST', stopAt: req.redirectUri,
  });
  const q = done.callback.searchParams;
  assert.equal(q.get('error'), 'access_denied');
  assert.equal(q.get('state'), req.state);
  assert.equal(q.get('iss'), info.issuer);
  assert.equal(q.get('code'), null);
});

for (const redirectUri of [
  'http://localhost:53123/callback',
  'http://[::1]:53123/callback',
  'http://127.0.0.1:53123/other',
  'https://127.0.0.1:53123/callback',
]) {
  test(`redirect_uri ${redirectUri} is a 400 JSON invalid_redirect_uri, no redirect`, async () => {
    const req = authRequest(info, { redirectUri });
    const res = await fetch(req.url, { redirect: 'manual' });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
    assert.match(res.headers.get('content-type'), /json/);
    const body = await res.json();
    assert.equal(body.error, 'invalid_redirect_uri');
  });
}

test('no PKCE is an error redirect with iss', async () => {
  const req = authRequest(info, { pkce: 'none' });
  const res = await fetch(req.url, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const cb = new URL(res.headers.get('location'));
  assert.equal(cb.origin + cb.pathname, req.redirectUri);
  assert.equal(cb.searchParams.get('error'), 'invalid_request');
  assert.equal(cb.searchParams.get('state'), req.state);
  assert.equal(cb.searchParams.get('iss'), info.issuer);
});

test('PKCE plain is an error', async () => {
  const req = authRequest(info, { pkce: 'plain' });
  const res = await fetch(req.url, { redirect: 'manual' });
  assert.equal(res.status, 303);
  const cb = new URL(res.headers.get('location'));
  assert.equal(cb.searchParams.get('error'), 'invalid_request');
  assert.equal(cb.searchParams.get('iss'), info.issuer);
});

test('unknown client is a 400 JSON error', async () => {
  const req = authRequest({ ...info, app_id: 'nope' });
  const res = await fetch(req.url, { redirect: 'manual' });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, 'invalid_client');
});

test('direct_sign_in with an unknown connector falls back to the sign-in form', async () => {
  const browser = new Browser();
  const req = authRequest(info, { extra: { direct_sign_in: 'social:google', ui_locales: 'ja' } });
  const page = await browser.navigate(req.url);
  assert.equal(page.status, 200);
  assert.match(page.text, /id="username"/);
  assert.match(page.text, /<html lang="ja">/);
});

test('a second sign-in in the same browser is consented at once (Logto session)', async () => {
  const browser = new Browser();
  await signInWithPassword(info, browser, authRequest(info));
  const req = authRequest(info);
  const done = await browser.navigate(req.url, { stopAt: req.redirectUri });
  assert.ok(done.callback, 'no sign-in page the second time');
  assert.ok(done.callback.searchParams.get('code'));
});

test('IDP_DEMO=1 lists the demo users on the sign-in page', async () => {
  const demo = await startServer({ IDP_DEMO: '1' });
  try {
    const browser = new Browser();
    const page = await browser.navigate(authRequest(demo.info).url);
    assert.match(page.text, /id="demo-users"/);
    assert.match(page.text, /alice-password-1/);
    assert.match(page.text, /bob-password-1/);
  } finally {
    await demo.stop();
  }
});
