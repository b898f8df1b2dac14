import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Browser, authRequest, startServer } from '../support/harness.js';

let on;
let off;
before(async () => {
  [on, off] = await Promise.all([startServer({ IDP_TEST_HOOKS: '1' }), startServer({ IDP_AMAZON_CONNECTOR: 'off' })]);
});
after(() => Promise.all([on?.stop(), off?.stop()]));

async function document(info, query = '') {
  const res = await fetch(`${info.endpoint}/api/.well-known/sign-in-exp${query}`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type'), /^application\/json/);
  return res.json();
}

test('the sign-in experience lists the Amazon connector as Logto does', async () => {
  const sie = await document(on.info, `?appId=${on.info.app_id}`);
  assert.deepEqual(sie.socialSignInConnectorTargets, ['amazon']);
  assert.equal(sie.socialConnectors.length, 1);
  const [amazon] = sie.socialConnectors;
  assert.equal(amazon.target, 'amazon');
  assert.equal(amazon.platform, 'Web');
  assert.equal(amazon.name.en, 'Amazon');
  assert.match(amazon.id, /^[a-z0-9]+$/);
  assert.notEqual(amazon.id, amazon.target, 'the id is the connector\'s own, not its target');
  assert.deepEqual(sie.ssoConnectors, []);
  assert.ok(Array.isArray(sie.signIn.methods));
  // The request log lists it, so tests can tell when an app asked.
  const { requests } = await (await fetch(`${on.info.endpoint}/test/requests`)).json();
  assert.ok(requests.some((r) => r.path === '/api/.well-known/sign-in-exp' && r.status === 200), JSON.stringify(requests));
});

test('with IDP_AMAZON_CONNECTOR=off the document offers no social connector', async () => {
  const sie = await document(off.info);
  assert.deepEqual(sie.socialSignInConnectorTargets, []);
  assert.deepEqual(sie.socialConnectors, []);
});

test('with Amazon off, direct_sign_in=social:amazon silently shows the first screen', async () => {
  const browser = new Browser();
  const page = await browser.navigate(authRequest(off.info, { extra: { direct_sign_in: 'social:amazon' } }).url);
  assert.equal(page.status, 200);
  assert.ok(page.url.startsWith(`${off.info.endpoint}/interaction/`), page.url);
  assert.match(page.text, /id="sign-in-form"/);
  assert.doesNotMatch(page.text, /id="sign-in-amazon"/);
  const uid = new URL(page.url).pathname.split('/')[2];
  const link = await browser.navigate(`${off.info.endpoint}/interaction/${uid}/amazon`);
  assert.equal(link.status, 400);
});

test('the document is read-only', async () => {
  const res = await fetch(`${on.info.endpoint}/api/.well-known/sign-in-exp`, { method: 'POST' });
  assert.equal(res.status, 405);
});
