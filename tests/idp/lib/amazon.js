// A stand-in for Login with Amazon on its own loopback origin, shaped like the real endpoints
// Logto's Amazon connector uses: GET /ap/oa (sign-in page), POST /auth/o2/token (code exchange)
// and GET /user/profile (the profile, with a bearer token).
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { esc, page, readForm } from './html.js';

const CODE_TTL_MS = 5 * 60 * 1000;
const TOKEN_TTL_S = 3600;

const token = (prefix) => `${prefix}${randomBytes(32).toString('base64url')}`;

export async function startAmazon({ port = 0, log = () => {} } = {}) {
  const clients = new Map(); // client_id -> { secret, redirectUris: Set }
  const users = [
    {
      user_id: 'amzn1.account.AFXQ7K2LMN3OPRS4TUV5WXYZ6AB',
      email: 'amazon.user@example.com',
      password: 'amazon-password-1',
      name: 'Amazon Shopper',
    },
  ];
  const codes = new Map(); // code -> { clientId, redirectUri, userId, expiresAt }
  const accessTokens = new Map(); // token -> { userId, expiresAt }

  function signInPage(params, error) {
    const hidden = ['client_id', 'scope', 'response_type', 'redirect_uri', 'state']
      .map((name) => `<input type="hidden" name="${name}" value="${esc(params.get(name))}">`)
      .join('\n');
    return page({
      title: 'Amazon Sign-In',
      style: 'main { border-top: 4px solid #ff9900; } input[type=submit] { background: #ffd814; border-color: #fcd200; color: #0f1111; }',
      body: `<h1>Sign in</h1>
<p class="muted">Amazon (test stand-in)</p>
${error ? `<p id="ap_error">${esc(error)}</p>` : ''}
<form id="ap_signin_form" method="post" action="/ap/signin">
${hidden}
<label for="ap_email">Email or mobile phone number</label>
<input id="ap_email" name="email" type="email" autocomplete="username">
<label for="ap_password">Password</label>
<input id="ap_password" name="password" type="password" autocomplete="current-password">
<input id="signInSubmit" type="submit" value="Sign in">
</form>`,
    });
  }

  function send(res, status, type, body, headers = {}) {
    res.writeHead(status, {
      'Content-Type': type,
      'Cache-Control': 'no-store',
      ...headers,
    });
    res.end(body);
  }
  const json = (res, status, obj) => send(res, status, 'application/json;charset=UTF-8', JSON.stringify(obj));
  const html = (res, status, body) => send(res, status, 'text/html; charset=utf-8', body);

  function checkAuthRequest(params) {
    const client = clients.get(params.get('client_id'));
    if (!client) return 'unknown client_id';
    if (!client.redirectUris.has(params.get('redirect_uri'))) return 'redirect_uri not registered';
    if (params.get('response_type') !== 'code') return 'unsupported response_type';
    return undefined;
  }

  async function handle(req, res) {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (req.method === 'GET' && url.pathname === '/ap/oa') {
      const problem = checkAuthRequest(url.searchParams);
      if (problem) return html(res, 400, page({ title: 'Amazon error', body: `<h1>Error</h1><p id="ap_error">${esc(problem)}</p>` }));
      return html(res, 200, signInPage(url.searchParams));
    }
    if (req.method === 'POST' && url.pathname === '/ap/signin') {
      const form = await readForm(req);
      const problem = checkAuthRequest(form);
      if (problem) return html(res, 400, page({ title: 'Amazon error', body: `<h1>Error</h1><p id="ap_error">${esc(problem)}</p>` }));
      const user = users.find((u) => u.email === form.get('email') && u.password === form.get('password'));
      if (!user) return html(res, 200, signInPage(form, 'Your password is incorrect'));
      const code = token('ANa');
      codes.set(code, {
        clientId: form.get('client_id'),
        redirectUri: form.get('redirect_uri'),
        userId: user.user_id,
        expiresAt: Date.now() + CODE_TTL_MS,
      });
      const target = new URL(form.get('redirect_uri'));
      target.searchParams.set('code', code);
      target.searchParams.set('scope', form.get('scope') || 'profile');
      if (form.get('state')) target.searchParams.set('state', form.get('state'));
      log(`amazon: ${user.email} signed in`);
      return send(res, 302, 'text/plain', '', { Location: target.href });
    }
    if (req.method === 'POST' && url.pathname === '/auth/o2/token') {
      const form = await readForm(req);
      const client = clients.get(form.get('client_id'));
      if (!client || client.secret !== form.get('client_secret')) {
        return json(res, 401, { error: 'invalid_client', error_description: 'Client authentication failed' });
      }
      if (form.get('grant_type') !== 'authorization_code') {
        return json(res, 400, { error: 'unsupported_grant_type', error_description: 'Unsupported grant type' });
      }
      const code = codes.get(form.get('code'));
      codes.delete(form.get('code'));
      if (!code || code.expiresAt < Date.now() || code.clientId !== form.get('client_id')
        || code.redirectUri !== form.get('redirect_uri')) {
        return json(res, 400, { error: 'invalid_grant', error_description: 'The authorization code is invalid or has expired.' });
      }
      const accessToken = token('Atza|');
      accessTokens.set(accessToken, { userId: code.userId, expiresAt: Date.now() + TOKEN_TTL_S * 1000 });
      return json(res, 200, {
        access_token: accessToken,
        refresh_token: token('Atzr|'),
        token_type: 'bearer',
        expires_in: TOKEN_TTL_S,
      });
    }
    if (req.method === 'GET' && url.pathname === '/user/profile') {
      const auth = req.headers.authorization || '';
      const value = auth.startsWith('Bearer ') ? auth.slice(7) : (req.headers['x-amz-access-token'] || url.searchParams.get('access_token'));
      const at = value && accessTokens.get(value);
      if (!at || at.expiresAt < Date.now()) {
        return json(res, 401, { error: 'invalid_token', error_description: 'The request has an invalid parameter : access_token' });
      }
      const user = users.find((u) => u.user_id === at.userId);
      return json(res, 200, { user_id: user.user_id, name: user.name, email: user.email });
    }
    return html(res, 404, page({ title: 'Not found', body: '<h1>Not found</h1>' }));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((err) => {
      log(`amazon: ${err.message}`);
      if (!res.headersSent) json(res, err.status || 500, { error: 'server_error' });
      else res.end();
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const origin = `http://127.0.0.1:${server.address().port}`;

  return {
    origin,
    users: users.map(({ email, password, name }) => ({ email, password, name })),
    registerClient(clientId, secret, redirectUri) {
      clients.set(clientId, { secret, redirectUris: new Set([redirectUri]) });
    },
    close() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
