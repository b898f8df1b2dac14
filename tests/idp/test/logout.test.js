import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  authRequest, formAction, hiddenInputs, refresh, signedIn, startServer, userinfo,
} from '../support/harness.js';

const REGISTERED = 'http://127.0.0.1:45678/signed-out';
let server;
let info;
before(async () => {
  server = await startServer({ IDP_POST_LOGOUT_REDIRECT_URIS: `${REGISTERED}, http://127.0.0.1:45679/bye` });
  info = server.info;
});
after(() => server?.stop());

function endSessionUrl(params) {
  const url = new URL(`${info.issuer}/session/end`);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  return url.href;
}

// Loads the end-session page and submits its self-submitting form, as a browser would.
async function endSession(browser, params, stopAt) {
  const page = await browser.navigate(endSessionUrl(params), { stopAt });
  if (page.callback || page.status !== 200) return page;
  assert.match(page.text, /document\.forms\[0\]\.submit\(\)/);
  const form = hiddenInputs(page.text);
  assert.equal(form.logout, 'yes');
  return browser.navigate(new URL(formAction(page.text, 'op.logoutForm'), page.url).href, {
    method: 'POST', form, stopAt,
  });
}

for (const uri of ['http://127.0.0.1:45670/signed-out', 'http://localhost:45678/signed-out', 'http://127.0.0.1/signed-out']) {
  test(`end-session with unregistered post_logout_redirect_uri ${uri} is a 400`, async () => {
    const { browser, tokens } = await signedIn(info);
    const res = await browser.navigate(endSessionUrl({
      client_id: info.app_id, id_token_hint: tokens.id_token, post_logout_redirect_uri: uri,
    }));
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.text).error, 'invalid_request');
  });
}

test('end-session with the exact registered URI redirects there with state; tokens keep working', async () => {
  const { browser, tokens } = await signedIn(info);
  const done = await endSession(browser, {
    client_id: info.app_id,
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: REGISTERED,
    state: 'bye-state',
  }, REGISTERED);
  assert.ok(done.callback, `expected a redirect to ${REGISTERED}, got ${done.status}`);
  assert.equal(done.callback.searchParams.get('state'), 'bye-state');
  // Ending the browser session does not revoke tokens.
  assert.equal((await userinfo(info, tokens.access_token)).status, 200);
  assert.equal((await refresh(info, tokens.refresh_token)).status, 200);
  // And the browser session is gone: the next sign-in shows the form again.
  const page = await browser.navigate(authRequest(info).url);
  assert.match(page.text, /id="username"/);
});

test('end-session without post_logout_redirect_uri shows the signed-out page', async () => {
  const { browser } = await signedIn(info);
  const done = await endSession(browser, { client_id: info.app_id });
  assert.equal(done.status, 200);
  assert.match(done.text, /id="signed-out"/);
});
