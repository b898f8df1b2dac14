// Test helpers: start server.js as a child process, and a tiny fetch-driven "browser" with a
// cookie jar and manual redirects. Kept out of test/ so the test runner does not run it.
import { spawn } from 'node:child_process';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'server.js');

export async function startServer(env = {}) {
  const child = spawn(process.execPath, [SERVER], {
    env: { ...process.env, IDP_EXIT_WITH_STDIN: '1', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  let stdout = '';
  const info = await new Promise((resolve, reject) => {
    // 30 s, as the Rust harness: a 4096-bit RSA key (IDP_ID_TOKEN_ALG=RS256) can take seconds.
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 30_000);
    child.stdout.on('data', (d) => {
      stdout += d;
      const nl = stdout.indexOf('\n');
      if (nl !== -1) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(stdout.slice(0, nl)));
        } catch (err) {
          reject(err);
        }
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
  return {
    info,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

export const b64url = (buf) => Buffer.from(buf).toString('base64url');
export const randomToken = () => b64url(randomBytes(32));
export const s256 = (verifier) => createHash('sha256').update(verifier).digest('base64url');

export function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h, 'base64url')),
    payload: JSON.parse(Buffer.from(p, 'base64url')),
  };
}

export function verifyJwt(jwt, jwks) {
  const [h, p, s] = jwt.split('.');
  const { header } = decodeJwt(jwt);
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`no key with kid ${header.kid}`);
  const key = createPublicKey({ key: jwk, format: 'jwk' });
  const data = Buffer.from(`${h}.${p}`);
  const sig = Buffer.from(s, 'base64url');
  const ok = header.alg === 'ES384'
    ? verify('sha384', data, { key, dsaEncoding: 'ieee-p1363' }, sig)
    : header.alg === 'RS256' ? verify('sha256', data, key, sig) : false;
  if (!ok) throw new Error('bad signature');
  return decodeJwt(jwt);
}

// A minimal browser: cookies per host:port (path ignored), manual redirects.
export class Browser {
  constructor() {
    this.jar = new Map(); // origin -> Map(name -> value)
  }

  cookiesFor(url) {
    const jar = this.jar.get(new URL(url).origin);
    if (!jar || jar.size === 0) return undefined;
    return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  store(url, res) {
    const origin = new URL(url).origin;
    if (!this.jar.has(origin)) this.jar.set(origin, new Map());
    const jar = this.jar.get(origin);
    for (const line of res.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      const expired = attrs.some((a) => /^max-age=0$/i.test(a)
        || (/^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now()));
      if (expired || value === '') jar.delete(name);
      else jar.set(name, value);
    }
  }

  async request(url, { method = 'GET', form } = {}) {
    const headers = { Accept: 'text/html,application/json' };
    const cookie = this.cookiesFor(url);
    if (cookie) headers.Cookie = cookie;
    let body;
    if (form) {
      body = new URLSearchParams(form).toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(url, { method, headers, body, redirect: 'manual' });
    this.store(url, res);
    return res;
  }

  // Follows redirects until a non-redirect answer, or until the location starts with `stopAt`
  // (the app's loopback callback, which nothing listens on in these tests).
  async navigate(url, { method = 'GET', form, stopAt } = {}) {
    let current = url;
    let req = { method, form };
    for (let hops = 0; hops < 20; hops += 1) {
      if (stopAt && current.startsWith(stopAt)) return { url: current, callback: new URL(current) };
      const res = await this.request(current, req);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.arrayBuffer();
        current = new URL(location, current).href;
        req = res.status === 307 || res.status === 308 ? req : { method: 'GET' };
        continue;
      }
      const text = await res.text();
      return { url: current, status: res.status, text, headers: res.headers };
    }
    throw new Error('too many redirects');
  }
}

export function formAction(html, id) {
  const re = new RegExp(`<form[^>]*id="${id}"[^>]*action="([^"]+)"`);
  const m = html.match(re);
  if (!m) throw new Error(`form ${id} not found`);
  return m[1].replaceAll('&amp;', '&');
}

export function hiddenInputs(html) {
  const out = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    out[m[1]] = m[2].replaceAll('&amp;', '&').replaceAll('&quot;', '"');
  }
  return out;
}

// Builds an authorization request like the app's.
export function authRequest(info, {
  port = 53123,
  scope = 'openid profile offline_access email identities',
  prompt = 'consent',
  resource,
  pkce = 'S256',
  extra = {},
  redirectUri,
} = {}) {
  const verifier = randomToken();
  const state = randomToken();
  const nonce = randomToken();
  const redirect = redirectUri ?? `http://127.0.0.1:${port}/callback`;
  const url = new URL(`${info.issuer}/auth`);
  const q = url.searchParams;
  q.set('client_id', info.app_id);
  q.set('response_type', 'code');
  q.set('redirect_uri', redirect);
  q.set('scope', scope);
  q.set('state', state);
  q.set('nonce', nonce);
  if (prompt) q.set('prompt', prompt);
  if (pkce === 'S256') {
    q.set('code_challenge', s256(verifier));
    q.set('code_challenge_method', 'S256');
  } else if (pkce === 'plain') {
    q.set('code_challenge', verifier);
    q.set('code_challenge_method', 'plain');
  }
  for (const r of [resource ?? []].flat()) q.append('resource', r);
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return { url: url.href, verifier, state, nonce, redirectUri: redirect };
}

// Password sign-in through the provider's form; returns the callback URL's parameters.
export async function signInWithPassword(info, browser, request, {
  username = 'alice',
  password = 'alice-password-1',
} = {}) {
  const stopAt = request.redirectUri.split('?')[0];
  const first = await browser.navigate(request.url, { stopAt });
  if (first.callback) return first.callback;
  const action = formAction(first.text, 'sign-in-form');
  const done = await browser.navigate(new URL(action, first.url).href, {
    method: 'POST',
    form: { username, password },
    stopAt,
  });
  if (!done.callback) throw new Error(`no callback; got ${done.status}: ${done.text.slice(0, 400)}`);
  return done.callback;
}

// Through the Amazon stand-in; `page` is the provider sign-in page or a direct_sign_in request.
export async function signInWithAmazon(info, browser, request, { direct = false } = {}) {
  const stopAt = request.redirectUri.split('?')[0];
  let amazonPage = await browser.navigate(request.url, { stopAt });
  if (!direct) {
    const link = amazonPage.text.match(/<a id="sign-in-amazon"[^>]*href="([^"]+)"/)[1];
    amazonPage = await browser.navigate(new URL(link, amazonPage.url).href, { stopAt });
  }
  if (!amazonPage.url.startsWith(info.amazon.origin)) throw new Error(`not at Amazon: ${amazonPage.url}`);
  const user = info.amazon.users[0];
  const done = await browser.navigate(new URL(formAction(amazonPage.text, 'ap_signin_form'), amazonPage.url).href, {
    method: 'POST',
    form: { ...hiddenInputs(amazonPage.text), email: user.email, password: user.password },
    stopAt,
  });
  if (!done.callback) throw new Error(`no callback; got ${done.status}: ${done.text.slice(0, 400)}`);
  return done.callback;
}

export async function postForm(url, form) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(Object.entries(form).filter(([, v]) => v !== undefined)).toString(),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

export function exchangeCode(info, request, code, overrides = {}) {
  return postForm(`${info.issuer}/token`, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: request.redirectUri,
    client_id: info.app_id,
    code_verifier: request.verifier,
    ...overrides,
  });
}

export function refresh(info, refreshToken, extra = {}) {
  return postForm(`${info.issuer}/token`, {
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: info.app_id,
    ...extra,
  });
}

export async function userinfo(info, accessToken) {
  const res = await fetch(`${info.issuer}/me`, { headers: { Authorization: `Bearer ${accessToken}` } });
  return { status: res.status, json: res.ok ? await res.json() : undefined, headers: res.headers };
}

// Sign in with password and exchange the code: the common start of many tests.
export async function signedIn(info, opts = {}) {
  const browser = opts.browser ?? new Browser();
  const request = authRequest(info, opts);
  const callback = await signInWithPassword(info, browser, request, opts);
  const code = callback.searchParams.get('code');
  if (!code) throw new Error(`callback without code: ${callback.href}`);
  const tokens = await exchangeCode(info, request, code);
  if (tokens.status !== 200) throw new Error(`token exchange failed: ${tokens.text}`);
  return { browser, request, callback, tokens: tokens.json };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Each [method, path] answers 404 on a provider started without IDP_TEST_HOOKS. Returns the
// statuses, so a caller can assert on them with its own message.
export async function statusesWithoutHooks(routes) {
  const plain = await startServer();
  try {
    const statuses = [];
    for (const [method, route] of routes) {
      const res = await fetch(`${plain.info.endpoint}${route}`, { method });
      await res.arrayBuffer();
      statuses.push(res.status);
    }
    return statuses;
  } finally {
    await plain.stop();
  }
}
