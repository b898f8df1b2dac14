// The Logto-faithful OpenID provider: oidc-provider configured the way Logto configures it for
// a "Native" application (see shared/logto-facts.md), an outer Koa app with the sign-in pages,
// and the Amazon stand-in on a second loopback origin.
import http from 'node:http';
import { createHash, randomBytes } from 'node:crypto';
import Koa from 'koa';
import mount from 'koa-mount';
import Provider, { errors } from 'oidc-provider';

import { createAdapterFactory } from './adapter.js';
import { startAmazon } from './amazon.js';
import { esc, page, readForm } from './html.js';
import {
  currentSigningAlg, LOGTO_ENABLED_SIGNING_ALGS, rotateSigningKey, SIGNING_ALGS, signingKey,
} from './keys.js';
import {
  createOrganizationTokens, ORGANIZATION_ROLES_SCOPE, ORGANIZATIONS_SCOPE,
} from './organizations.js';
import { claimsFor, createUserStore, ORGANIZATIONS } from './users.js';
import { signInExperience } from './sign-in-exp.js';

const RESOURCE_SCOPES = ['read:data', 'write:data'];
const AMAZON_CLIENT_ID = 'amzn1.application-oa2-client.logtodesktopdemo';
const SOCIAL_STATE_TTL_MS = 10 * 60 * 1000;
const REDIRECT_URI = 'http://127.0.0.1/callback';

const list = (value) => (value ?? '').split(',').map((s) => s.trim()).filter(Boolean);

// Options from the environment (see README.md); startIdp() also takes them directly.
export function optionsFromEnv(env = process.env) {
  const num = (name, fallback) => {
    if (env[name] === undefined || env[name] === '') return fallback;
    const n = Number(env[name]);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number`);
    return n;
  };
  return {
    port: num('IDP_PORT', 0),
    amazonPort: num('IDP_AMAZON_PORT', 0),
    appId: env.IDP_APP_ID || 'desktop-demo-app',
    alg: env.IDP_ID_TOKEN_ALG || 'ES384',
    postLogoutRedirectUris: list(env.IDP_POST_LOGOUT_REDIRECT_URIS),
    resources: env.IDP_RESOURCES === undefined ? ['https://api.example.test'] : list(env.IDP_RESOURCES),
    accessTokenTtl: num('IDP_ACCESS_TOKEN_TTL', 3600),
    refreshReuseSeconds: num('IDP_REFRESH_REUSE_SECONDS', 3),
    demo: env.IDP_DEMO === '1',
    testHooks: env.IDP_TEST_HOOKS === '1',
    amazonConnector: env.IDP_AMAZON_CONNECTOR !== 'off',
  };
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

const AVATAR_BOB = `<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96" viewBox="0 0 96 96">
<rect width="96" height="96" rx="48" fill="#2f80ed"/>
<text x="48" y="62" font-family="sans-serif" font-size="44" text-anchor="middle" fill="#fff">B</text>
</svg>
`;

export async function startIdp(options = {}) {
  const opts = { ...optionsFromEnv({}), ...options };
  const log = opts.log ?? ((msg) => process.stderr.write(`[idp] ${msg}\n`));
  const { alg, appId, resources } = opts;
  const firstKey = await signingKey(alg); // before anything listens: throws for another alg

  const amazon = await startAmazon({ port: opts.amazonPort, log });
  const server = http.createServer();
  let port;
  try {
    port = await listen(server, opts.port);
  } catch (err) {
    await amazon.close();
    throw err;
  }
  const endpoint = `http://127.0.0.1:${port}`;
  const issuer = `${endpoint}/oidc`;
  const amazonSecret = randomBytes(24).toString('base64url');
  amazon.registerClient(AMAZON_CLIENT_ID, amazonSecret, `${endpoint}/callback/amazon`);

  const users = createUserStore({ endpoint });
  const socialStates = new Map(); // state -> { uid, expiresAt }
  // Everything is signed with the current key's algorithm, which a rotation may change (keys.js).
  let provider;
  const signingAlg = () => currentSigningAlg(provider);
  const organizationTokens = createOrganizationTokens({
    users, signingAlg, accessTokenTtl: opts.accessTokenTtl,
  });
  // The Native app as registered; a rotation to the other key type registers it again with the
  // new `id_token_signed_response_alg`, as Logto's reloaded tenant does (keys.js).
  const nativeApp = {
    client_id: appId,
    client_name: 'Logto Desktop (demo)',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: [REDIRECT_URI],
    post_logout_redirect_uris: opts.postLogoutRedirectUris,
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    id_token_signed_response_alg: alg,
  };

  provider = new Provider(issuer, {
    adapter: createAdapterFactory({ refreshReuseSeconds: opts.refreshReuseSeconds }),
    clients: [nativeApp],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      id_token_signed_response_alg: alg,
      token_endpoint_auth_method: 'none',
    },
    jwks: { keys: [firstKey] },
    // Logto's list; discovery lists those of the keys held (keys.js).
    enabledJWA: {
      idTokenSigningAlgValues: [...LOGTO_ENABLED_SIGNING_ALGS],
      userinfoSigningAlgValues: [...LOGTO_ENABLED_SIGNING_ALGS],
    },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    findAccount(ctx, id) {
      const user = users.byId(id);
      if (!user) return undefined;
      return { accountId: id, claims: (use) => claimsFor(user, use) };
    },
    scopes: [
      'openid', 'offline_access', 'profile', 'email', 'identities', 'custom_data', 'roles',
      ORGANIZATIONS_SCOPE, ORGANIZATION_ROLES_SCOPE,
    ],
    claims: {
      openid: ['sub'],
      profile: ['name', 'username', 'preferred_username', 'picture', 'created_at', 'updated_at'],
      email: ['email', 'email_verified'],
      identities: ['identities', 'sso_identities'],
      custom_data: ['custom_data'],
      roles: ['roles'],
      [ORGANIZATIONS_SCOPE]: ['organizations', 'organization_data'],
      [ORGANIZATION_ROLES_SCOPE]: ['organization_roles'],
    },
    conformIdTokenClaims: false,
    extraParams: ['direct_sign_in', 'first_screen', 'identifier', 'organization_id'],
    responseTypes: ['code'],
    allowOmittingSingleRegisteredRedirectUri: false,
    // Always rotate. This hook runs inside the refresh_token grant right after its reuse
    // detection and before rotation: where Logto checks `organization_id` (see organizations.js).
    async rotateRefreshToken(ctx) {
      await organizationTokens.checkAccess(ctx);
      return true;
    },
    extraTokenClaims: (ctx, token) => organizationTokens.extraTokenClaims(ctx, token),
    // Logto: ending the browser session never revokes tokens; only revocation does.
    expiresWithSession: async () => false,
    ttl: {
      AccessToken: opts.accessTokenTtl,
      AuthorizationCode: 600,
      IdToken: 3600,
      RefreshToken: 14 * 24 * 3600,
      Grant: 180 * 24 * 3600,
      Session: 14 * 24 * 3600,
      Interaction: 3600,
    },
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      introspection: { enabled: false },
      registration: { enabled: false },
      clientCredentials: { enabled: false },
      deviceFlow: { enabled: false },
      revocation: { enabled: true },
      userinfo: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // Logto ends the session without asking: the confirmation form submits itself.
        async logoutSource(ctx, form) {
          const withLogout = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/><noscript><button id="logout-confirm" type="submit">Sign out</button></noscript></form>');
          ctx.body = page({
            title: 'Signing out',
            body: `<h1>Signing out…</h1>\n${withLogout}\n<script>document.forms[0].submit();</script>`,
          });
        },
        async postLogoutSuccessSource(ctx) {
          ctx.body = page({
            title: 'Signed out',
            body: '<h1 id="signed-out">You have been signed out</h1>\n<p class="muted">You can close this window.</p>',
          });
        },
      },
      resourceIndicators: {
        enabled: true,
        async getResourceServerInfo(ctx, indicator) {
          if (!resources.includes(indicator)) throw new errors.InvalidTarget();
          return {
            scope: RESOURCE_SCOPES.join(' '),
            audience: indicator,
            accessTokenTTL: opts.accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: signingAlg() } },
          };
        },
      },
    },
    interactions: {
      url: (ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Errors that cannot go back to the client are JSON, like Logto's (e.g. 400 invalid_redirect_uri).
    async renderError(ctx, out) {
      ctx.type = 'json';
      ctx.body = out;
    },
  });

  // Logto matches post_logout_redirect_uri exactly, port included (no loopback exception).
  provider.Client.prototype.postLogoutRedirectUriAllowed = function exact(value) {
    return this.postLogoutRedirectUris.includes(value);
  };

  organizationTokens.install(provider);

  provider.on('server_error', (ctx, err) => log(`server_error: ${err.stack || err.message}`));
  provider.on('grant.revoked', () => log('grant revoked'));
  provider.on('end_session.success', () => log('session ended'));

  // Ends an interaction with the user signed in and a saved Grant as consent (first-party app:
  // Logto never shows a consent screen to it). Returns where the browser goes next.
  async function completeInteraction(interaction, accountId, { login = true } = {}) {
    const { params } = interaction;
    let grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : undefined;
    if (!grant || grant.accountId !== accountId) {
      grant = new provider.Grant({ accountId, clientId: params.client_id });
    }
    if (params.scope) grant.addOIDCScope(params.scope);
    for (const resource of [params.resource ?? []].flat()) {
      if (resources.includes(resource)) grant.addResourceScope(resource, RESOURCE_SCOPES.join(' '));
    }
    const grantId = await grant.save();
    interaction.result = {
      ...(login ? { login: { accountId } } : {}),
      consent: { grantId },
    };
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return interaction.returnTo;
  }

  async function denyInteraction(interaction, description) {
    interaction.result = { error: 'access_denied', error_description: description };
    await interaction.save(interaction.exp - Math.floor(Date.now() / 1000));
    return interaction.returnTo;
  }

  function amazonAuthorizeUrl(uid) {
    const state = randomBytes(24).toString('base64url');
    socialStates.set(state, { uid, expiresAt: Date.now() + SOCIAL_STATE_TTL_MS });
    for (const [key, value] of socialStates) if (value.expiresAt < Date.now()) socialStates.delete(key);
    const url = new URL('/ap/oa', amazon.origin);
    url.search = new URLSearchParams({
      client_id: AMAZON_CLIENT_ID,
      scope: 'profile',
      response_type: 'code',
      redirect_uri: `${endpoint}/callback/amazon`,
      state,
    }).toString();
    return url.href;
  }

  function langOf(params) {
    const first = String(params.ui_locales ?? '').split(' ')[0].toLowerCase();
    return first.startsWith('ja') ? 'ja' : 'en';
  }

  function signInPage(details, error) {
    const { uid, params } = details;
    const client = esc(params.client_id);
    const demo = opts.demo
      ? `<section id="demo-users">
<p class="muted">Demo users of this local test provider:</p>
<table>
<tr><th>Username</th><th>Password</th></tr>
${users.demoUsers.map((u) => `<tr><td>${esc(u.username)}</td><td>${esc(u.password)}</td></tr>`).join('\n')}
</table>
<p class="muted">Amazon: ${amazon.users.map((u) => `${esc(u.email)} / ${esc(u.password)}`).join(', ')}</p>
</section>`
      : '';
    return page({
      title: 'Sign in',
      lang: langOf(params),
      body: `<h1>Sign in to continue to ${client}</h1>
${error ? `<p id="error">${esc(error)}</p>` : ''}
<form id="sign-in-form" method="post" action="/interaction/${esc(uid)}/login">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" value="${esc(params.login_hint ?? '')}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password">
<button id="submit" type="submit">Sign in</button>
</form>
${opts.amazonConnector ? `<a id="sign-in-amazon" class="button secondary" href="/interaction/${esc(uid)}/amazon">Continue with Amazon</a>` : ''}
<form id="deny-form" method="post" action="/interaction/${esc(uid)}/abort">
<button id="deny" class="secondary" type="submit">Cancel</button>
</form>
${demo}`,
    });
  }

  function errorPage(ctx, status, message) {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = page({ title: 'Error', body: `<h1>Something went wrong</h1>\n<p id="error">${esc(message)}</p>` });
  }

  function redirect(ctx, location) {
    ctx.status = 303;
    ctx.redirect(location);
  }

  async function amazonCallback(ctx) {
    const q = ctx.query;
    const pending = typeof q.state === 'string' ? socialStates.get(q.state) : undefined;
    if (pending) socialStates.delete(q.state);
    if (!pending || pending.expiresAt < Date.now()) {
      return errorPage(ctx, 400, 'The sign-in with Amazon is invalid or has expired (state mismatch).');
    }
    const interaction = await provider.Interaction.find(pending.uid);
    if (!interaction) return errorPage(ctx, 400, 'The sign-in session has expired. Start again from the app.');
    if (q.error || typeof q.code !== 'string') {
      return redirect(ctx, await denyInteraction(interaction, `Amazon: ${q.error || 'no code'}`));
    }
    const tokenRes = await fetch(`${amazon.origin}/auth/o2/token`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: q.code,
        redirect_uri: `${endpoint}/callback/amazon`,
        client_id: AMAZON_CLIENT_ID,
        client_secret: amazonSecret,
      }),
    });
    if (!tokenRes.ok) return errorPage(ctx, 502, `Amazon token endpoint answered ${tokenRes.status}`);
    const { access_token: accessToken } = await tokenRes.json();
    const profileRes = await fetch(`${amazon.origin}/user/profile`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    });
    if (!profileRes.ok) return errorPage(ctx, 502, `Amazon profile endpoint answered ${profileRes.status}`);
    const profile = await profileRes.json();
    const user = users.linkSocial('amazon', profile.user_id, {
      id: profile.user_id,
      name: profile.name,
      email: profile.email,
      rawData: profile,
    });
    log(`signed in through amazon as ${user.id}`);
    return redirect(ctx, await completeInteraction(interaction, user.id));
  }

  const app = new Koa();
  app.keys = provider.keys;
  app.proxy = false;

  app.use(async (ctx, next) => {
    const started = Date.now();
    try {
      await next();
    } finally {
      log(`${ctx.method} ${ctx.path} ${ctx.status} ${Date.now() - started}ms`);
    }
  });

  // Test hooks (IDP_TEST_HOOKS=1 only): a log of the requests to the token, revocation,
  // end-session, JWKS and userinfo endpoints, how many refresh-token grants arrived and how many
  // were in flight at once, how often the JWKS was fetched, a way to make the token endpoint fail
  // with 503 for the next N requests, and a signing-key rotation as Logto's Console does it
  // (keys.js).
  const stats = {
    refreshRequests: 0, inFlight: 0, maxInFlight: 0, failNext: 0, jwksRequests: 0,
    delayNext: 0, delayedAnswers: 0,
  };
  if (opts.testHooks) {
    // The secrets of the run (`GET /test/secrets`), for the app's leak tests: the raw values the
    // provider handed out or was given, de-duplicated, in the order first seen. Test-only (this
    // block exists only with IDP_TEST_HOOKS=1) and never logged. Nothing here reads a request
    // body: what oidc-provider parsed is taken from `ctx.oidc.params` once it has answered (or,
    // for a token request failed by /test/fail-token, the form that hook read, ctx.state.testForm).
    const secrets = new Set();
    const addSecret = (value) => {
      if (typeof value === 'string' && value !== '') secrets.add(value);
    };
    const addParams = (params, names) => {
      if (!params) return;
      for (const name of names) addSecret(params[name]);
    };
    // Authorization responses: `code` and `state` of a redirect to the client, in the query or in
    // the fragment of the Location header of any answer.
    const addFromLocation = (location) => {
      if (typeof location !== 'string' || !location.includes('code=')) return;
      let url;
      try {
        url = new URL(location, endpoint);
      } catch {
        return;
      }
      for (const params of [url.searchParams, new URLSearchParams(url.hash.slice(1))]) {
        if (!params.has('code')) continue;
        addSecret(params.get('code'));
        addSecret(params.get('state'));
      }
    };
    // The same authorization responses as oidc-provider builds them, whatever the response mode
    // (form_post answers have no Location).
    provider.on('authorization.success', (ctx, out) => {
      addSecret(out?.code);
      if (out?.code) addSecret(out.state);
    });
    const tokenAnswer = (body) => {
      if (body && typeof body === 'object' && !Buffer.isBuffer(body)) return body;
      if (typeof body === 'string' || Buffer.isBuffer(body)) {
        try {
          return JSON.parse(body.toString());
        } catch {
          return undefined; // no log: the message could quote the body
        }
      }
      return undefined;
    };
    app.use(async (ctx, next) => {
      if (ctx.path === '/test/secrets' && ctx.method === 'GET') {
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { secrets: [...secrets] };
        return undefined;
      }
      if (ctx.path === '/test/secrets/clear' && ctx.method === 'POST') {
        secrets.clear();
        ctx.status = 204;
        return undefined;
      }
      const path = ctx.path;
      const isAuth = path === '/oidc/auth' || path.startsWith('/oidc/auth/');
      if (isAuth && ctx.method === 'GET') addParams(ctx.query, ['nonce', 'state']);
      let thrown = false;
      try {
        await next();
      } catch (err) {
        thrown = true;
        throw err;
      } finally {
        try {
          const params = ctx.oidc?.params ?? ctx.state.testForm;
          if (isAuth) {
            addParams(params, ['nonce', 'state']);
          } else if (path === '/oidc/token') {
            const grantType = params?.grant_type;
            if (grantType === 'authorization_code') addParams(params, ['code', 'code_verifier']);
            else if (grantType === 'refresh_token') addParams(params, ['refresh_token']);
            if (!thrown && ctx.status === 200) {
              addParams(tokenAnswer(ctx.body), ['access_token', 'refresh_token', 'id_token']);
            }
          } else if (path === '/oidc/token/revocation') {
            addParams(params, ['token']);
          }
          addFromLocation(ctx.response.get('Location'));
        } catch {
          // never fails the request, and never logs (a message could quote a secret)
        }
      }
      return undefined;
    });

    // The request log: what the provider was told at the endpoints below, in order of arrival,
    // without any token itself (only the SHA-256, in hex, of the refresh token of a refresh grant
    // and of the token of a revocation, for tests to compare with hashes of the tokens they hold).
    // Recorded after the request is answered, from the parameters oidc-provider parsed itself
    // (`ctx.oidc.params`), so nothing here reads the body before it does. An entry is listed
    // once its request has been answered.
    // Discovery too: "a restore makes no request" must see a restore that fetched it.
    const LOGGED_PATHS = new Set([
      '/oidc/.well-known/openid-configuration',
      '/oidc/token', '/oidc/token/revocation', '/oidc/session/end', '/oidc/session/end/confirm',
      '/oidc/jwks', '/oidc/me', '/api/.well-known/sign-in-exp',
    ]);
    const requestLog = []; // entries in order of arrival; `status` is set when answered
    const sha256 = (value) => createHash('sha256').update(value).digest('hex');
    const stringParam = (value) => (typeof value === 'string' ? value : undefined);
    app.use(async (ctx, next) => {
      if (ctx.path === '/test/requests' && ctx.method === 'GET') {
        ctx.set('Cache-Control', 'no-store');
        ctx.body = { requests: requestLog.filter((e) => e.status !== undefined) };
        return undefined;
      }
      if (ctx.path === '/test/requests/clear' && ctx.method === 'POST') {
        requestLog.length = 0;
        ctx.status = 204;
        return undefined;
      }
      if (!LOGGED_PATHS.has(ctx.path)) return next();
      const path = ctx.path;
      const entry = { at: Date.now(), method: ctx.method, path };
      requestLog.push(entry);
      let thrown;
      try {
        await next();
      } catch (err) {
        thrown = err;
        throw err;
      } finally {
        // oidc-provider's own parameters; for a token request that never reached it (a 503
        // from /test/fail-token) the form the hook read instead (ctx.state.testForm).
        let token;
        try {
          const params = ctx.oidc?.params ?? ctx.oidc?.body ?? ctx.state.testForm ?? {};
          if (path === '/oidc/token') {
            const grantType = stringParam(params.grant_type);
            if (grantType) entry.grant_type = grantType;
            if (grantType === 'refresh_token') token = stringParam(params.refresh_token);
          } else if (path === '/oidc/token/revocation') {
            const hint = stringParam(params.token_type_hint);
            if (hint) entry.token_type_hint = hint;
            token = stringParam(params.token);
          }
        } catch (err) {
          log(`request log: ${err.message}`); // never fails the request itself
        }
        entry.status = thrown ? (thrown.status || thrown.statusCode || 500) : ctx.status;
        if (token) entry.token_sha256 = sha256(token);
      }
      return undefined;
    });

    const countRefresh = (ctx) => {
      if (ctx.oidc?.params?.grant_type === 'refresh_token') stats.refreshRequests += 1;
    };
    provider.on('grant.success', countRefresh);
    provider.on('grant.error', countRefresh);
    app.use(async (ctx, next) => {
      if (ctx.path === '/test/stats' && ctx.method === 'GET') {
        ctx.body = {
          refresh_requests: stats.refreshRequests,
          max_in_flight: stats.maxInFlight,
          in_flight: stats.inFlight,
          jwks_requests: stats.jwksRequests,
          delayed_answers: stats.delayedAnswers,
        };
        return undefined;
      }
      if (ctx.path === '/test/rotate-keys' && ctx.method === 'POST') {
        const form = await readForm(ctx.req);
        const keep = form.get('keep_previous') ?? '1';
        const newAlg = form.get('alg') ?? undefined;
        let invalid;
        if (keep !== '1' && keep !== '0') invalid = 'keep_previous must be 1 or 0';
        else if (newAlg !== undefined && !SIGNING_ALGS.includes(newAlg)) invalid = `alg must be ${SIGNING_ALGS.join(' or ')}`;
        if (invalid) {
          ctx.status = 400;
          ctx.body = { error: 'invalid_request', error_description: invalid };
          return undefined;
        }
        const rotated = await rotateSigningKey(provider, {
          alg: newAlg, keepPrevious: keep === '1', clients: [nativeApp],
        });
        log(`signing key rotated to ${rotated.kid} (${rotated.alg}), jwks [${rotated.jwksKids.join(', ')}]`);
        ctx.body = {
          kid: rotated.kid, previous_kid: rotated.previousKid, jwks_kids: rotated.jwksKids, alg: rotated.alg,
        };
        return undefined;
      }
      // Counted here, before oidc-provider answers: every fetch the client made, whatever came of it.
      if (ctx.path === '/oidc/jwks' && ctx.method === 'GET') stats.jwksRequests += 1;
      if (ctx.path === '/test/fail-token' && ctx.method === 'POST') {
        const form = await readForm(ctx.req);
        stats.failNext = Number(form.get('count') || '1');
        ctx.status = 204;
        return undefined;
      }
      // The next token answer is held back for `ms` after the provider made it (its refresh
      // token already rotated): a program stopped in that time must still keep what it brings.
      if (ctx.path === '/test/delay-token' && ctx.method === 'POST') {
        const form = await readForm(ctx.req);
        stats.delayNext = Math.min(Number(form.get('ms') || '0'), 30000);
        ctx.status = 204;
        return undefined;
      }
      if (ctx.path !== '/oidc/token' || ctx.method !== 'POST') return next();
      if (stats.failNext > 0) {
        stats.failNext -= 1;
        // Nothing else reads this body; the request log (above) takes its parameters from here.
        try {
          const form = await readForm(ctx.req);
          ctx.state.testForm = Object.fromEntries(form);
        } catch {
          // an unreadable body is still answered 503
        }
        ctx.status = 503;
        ctx.body = 'Service Unavailable';
        return undefined;
      }
      stats.inFlight += 1;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      try {
        await next();
        const delay = stats.delayNext;
        if (delay > 0) {
          stats.delayNext = 0;
          stats.delayedAnswers += 1;
          await new Promise((resolve) => { setTimeout(resolve, delay); });
        }
      } finally {
        stats.inFlight -= 1;
      }
      return undefined;
    });
  }

  // Public, like Logto's: no client authentication, JSON, `appId` and `organizationId` accepted.
  app.use(async (ctx, next) => {
    if (ctx.path !== '/api/.well-known/sign-in-exp') return next();
    if (ctx.method !== 'GET') {
      ctx.status = 405;
      return undefined;
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.body = signInExperience({ endpoint, amazonConnector: opts.amazonConnector });
    return undefined;
  });

  app.use(async (ctx, next) => {
    const m = ctx.path.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|amazon|abort))?$/);
    const isCallback = ctx.path === '/callback/amazon';
    if (!m && !isCallback && ctx.path !== '/' && ctx.path !== '/avatars/bob.svg') return next();

    ctx.set('Cache-Control', 'no-store');
    ctx.set('Referrer-Policy', 'no-referrer');
    ctx.set('X-Frame-Options', 'DENY');

    if (ctx.path === '/avatars/bob.svg' && ctx.method === 'GET') {
      ctx.type = 'image/svg+xml';
      ctx.set('Cache-Control', 'public, max-age=3600');
      ctx.body = AVATAR_BOB;
      return undefined;
    }
    if (ctx.path === '/' && ctx.method === 'GET') {
      ctx.type = 'html';
      ctx.body = page({
        title: 'Logto-faithful test provider',
        body: `<h1>Logto-faithful test provider</h1>\n<p>Issuer: <code>${esc(issuer)}</code></p>\n<p><a href="/oidc/.well-known/openid-configuration">Discovery document</a></p>`,
      });
      return undefined;
    }
    if (isCallback && ctx.method === 'GET') return amazonCallback(ctx);
    if (!m) return next();

    const [, uid, action] = m;
    let details;
    try {
      details = await provider.interactionDetails(ctx.req, ctx.res);
    } catch (err) {
      return errorPage(ctx, 400, `The sign-in session was not found or has expired (${err.message}). Start again from the app.`);
    }
    if (details.uid !== uid) return errorPage(ctx, 400, 'The sign-in session does not match this page.');

    if (!action && ctx.method === 'GET') {
      if (details.prompt.name !== 'login' && details.session?.accountId) {
        // Already signed in here (SSO session): consent automatically, no page.
        return redirect(ctx, await completeInteraction(details, details.session.accountId, { login: false }));
      }
      // As Logto's experience app: a direct sign-in to a connector the sign-in experience does
      // not offer falls back to the first screen, silently.
      if (details.params.direct_sign_in === 'social:amazon' && opts.amazonConnector) {
        return redirect(ctx, amazonAuthorizeUrl(uid));
      }
      ctx.type = 'html';
      ctx.body = signInPage(details);
      return undefined;
    }
    if (action === 'login' && ctx.method === 'POST') {
      const form = await readForm(ctx.req);
      const user = users.checkPassword(form.get('username') ?? '', form.get('password') ?? '');
      if (!user) {
        ctx.status = 200;
        ctx.type = 'html';
        ctx.body = signInPage(details, 'Incorrect username or password.');
        return undefined;
      }
      log(`signed in with password as ${user.id}`);
      return redirect(ctx, await completeInteraction(details, user.id));
    }
    if (action === 'amazon' && ctx.method === 'GET') {
      if (!opts.amazonConnector) return errorPage(ctx, 400, 'Amazon sign-in is not enabled for this tenant.');
      return redirect(ctx, amazonAuthorizeUrl(uid));
    }
    if (action === 'abort' && ctx.method === 'POST') {
      return redirect(ctx, await denyInteraction(details, 'End-User aborted interaction'));
    }
    ctx.status = 405;
    return undefined;
  });

  app.use(mount('/oidc', provider));

  app.on('error', (err) => {
    if (err.expose) return;
    log(`app error: ${err.stack || err.message}`);
  });

  server.on('request', app.callback());

  const info = {
    endpoint,
    issuer,
    app_id: appId,
    users: users.demoUsers,
    amazon: { origin: amazon.origin, users: amazon.users },
    resources,
    alg,
    organizations: ORGANIZATIONS.map((o) => o.id),
  };

  let closing;
  return {
    info,
    provider,
    close() {
      closing ||= Promise.all([
        new Promise((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        }),
        amazon.close(),
      ]).then(() => undefined);
      return closing;
    },
  };
}
