// IDP_TEST_HOOKS=1: every secret of the run, raw (`GET /test/secrets`, `POST /test/secrets/clear`),
// for the app's leak tests.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  authRequest, Browser, exchangeCode, formAction, hiddenInputs, postForm, randomToken, refresh, signedIn, startServer, statusesWithoutHooks,
} from '../support/harness.js';

let server;
let info;
before(async () => {
  server = await startServer({ IDP_TEST_HOOKS: '1' });
  info = server.info;
});
after(() => server?.stop());

const secrets = async () => {
  const res = await fetch(`${info.endpoint}/test/secrets`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  const body = await res.json();
  assert.deepEqual(Object.keys(body), ['secrets']);
  assert.equal(new Set(body.secrets).size, body.secrets.length, 'duplicates');
  return body.secrets;
};
const clear = async () => {
  const res = await fetch(`${info.endpoint}/test/secrets/clear`, { method: 'POST' });
  assert.equal(res.status, 204);
};

test('sign-in (code + PKCE), refresh and revocation: every secret, once, in the order first seen', async () => {
  await clear();
  const { request, callback, tokens } = await signedIn(info);
  const code = callback.searchParams.get('code');
  assert.equal(callback.searchParams.get('state'), request.state);
  assert.ok(tokens.refresh_token && tokens.id_token && tokens.access_token);
  const r1 = await refresh(info, tokens.refresh_token);
  assert.equal(r1.status, 200, r1.text);
  const rev = await postForm(`${info.issuer}/token/revocation`, {
    token: r1.json.refresh_token, token_type_hint: 'refresh_token', client_id: info.app_id,
  });
  assert.equal(rev.status, 200);

  assert.deepEqual(await secrets(), [
    request.nonce, request.state, // the authorization request
    code, // its redirect to the callback
    request.verifier, // the code exchange
    tokens.access_token, tokens.refresh_token, tokens.id_token,
    r1.json.access_token, r1.json.refresh_token, r1.json.id_token, // the refresh
  ]);

  // none of them is logged
  const stderr = server.stderr();
  for (const secret of await secrets()) assert.ok(!stderr.includes(secret), 'a secret is on stderr');
});

test('values only received count too: an unknown revoked token, a failed exchange, a refresh failed by /test/fail-token', async () => {
  const { tokens } = await signedIn(info);
  await clear();
  const unknown = randomToken();
  const rev = await postForm(`${info.issuer}/token/revocation`, { token: unknown, client_id: info.app_id });
  assert.equal(rev.status, 200);
  const badCode = randomToken();
  const badVerifier = randomToken();
  const bad = await exchangeCode(info, { redirectUri: 'http://127.0.0.1:53123/callback', verifier: badVerifier }, badCode);
  assert.equal(bad.status, 400);
  assert.equal((await postForm(`${info.endpoint}/test/fail-token`, { count: '1' })).status, 204);
  const failed = await refresh(info, tokens.refresh_token);
  assert.equal(failed.status, 503);
  assert.deepEqual(await secrets(), [unknown, badCode, badVerifier, tokens.refresh_token]);
});

test('a JWT access token for an API resource (refresh with `resource`), and an authorization response by form_post', async () => {
  await clear();
  const resource = info.resources[0];
  const { request, tokens } = await signedIn(info, { resource });
  const api = await refresh(info, tokens.refresh_token, { resource });
  assert.equal(api.status, 200, api.text);
  assert.equal(api.json.access_token.split('.').length, 3);
  assert.ok((await secrets()).includes(api.json.access_token));

  // form_post: no Location carries the code, the answer is a page that posts it to the app
  await clear();
  const browser = new Browser();
  const post = authRequest(info, { extra: { response_mode: 'form_post' } });
  const first = await browser.navigate(post.url);
  const done = await browser.navigate(new URL(formAction(first.text, 'sign-in-form'), first.url).href, {
    method: 'POST', form: { username: 'alice', password: 'alice-password-1' },
  });
  assert.equal(done.status, 200);
  const fields = hiddenInputs(done.text);
  assert.ok(fields.code);
  assert.equal(fields.state, post.state);
  assert.deepEqual(await secrets(), [post.nonce, post.state, fields.code]);
  assert.ok(request.state && !(await secrets()).includes(request.state));
});

test('clear empties it', async () => {
  await signedIn(info);
  assert.ok((await secrets()).length > 0);
  await clear();
  assert.deepEqual(await secrets(), []);
});

test('without IDP_TEST_HOOKS the secrets routes are 404', async () => {
  const statuses = await statusesWithoutHooks([['GET', '/test/secrets'], ['POST', '/test/secrets/clear']]);
  assert.deepEqual(statuses, [404, 404]);
});
