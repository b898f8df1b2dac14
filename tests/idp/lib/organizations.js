// Logto's organization tokens (its RFC 0001), as Logto's own refresh_token grant does them
// (packages/core/src/oidc/grants/refresh-token.ts and grants/utils.ts in logto-io/logto):
//
// - `organization_id` on a refresh: the user must be a member of that organization (else 403
//   access_denied), then the refresh token must hold `urn:logto:scope:organizations` (else 403
//   insufficient_scope). Both checks come after the refresh token's own checks (its reuse
//   detection included) and before it is rotated, so a refused request uses nothing up.
// - Without `resource`: the access token is a JWT for the audience
//   `urn:logto:organization:<id>`. Its scope would be the user's organization-role permissions
//   that the sign-in also asked for; this provider has no organization permissions (nor Logto's
//   `urn:logto:resource:organizations` resource to ask for them), so the scope is always empty:
//   `"scope": ""` in the answer and no `scope` claim in the JWT (oidc-provider drops an empty one).
// - With `resource`: the usual token for that API, plus an `organization_id` claim.
// - The refresh token rotates, and the answer holds a new ID token, as on any refresh.
//
// oidc-provider has no hook for this, so: the checks run in the `rotateRefreshToken` hook (which
// its refresh_token grant calls exactly where Logto checks, right after reuse detection), the
// claim comes from `extraTokenClaims`, and the built-in refresh_token grant is wrapped: after it
// has answered, its opaque access token is swapped for the organization JWT.
import { errors } from 'oidc-provider';
// oidc-provider's private per-instance state (no `exports` map keeps this path reachable); used
// once, to fetch the built-in refresh_token handler and its parameters to wrap them.
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

export const ORGANIZATIONS_SCOPE = 'urn:logto:scope:organizations';
export const ORGANIZATION_ROLES_SCOPE = 'urn:logto:scope:organization_roles';
export const organizationUrn = (id) => `urn:logto:organization:${id}`;

// Logto: `cond(Boolean(params.organization_id) && String(params.organization_id))`.
function requestedOrganization(ctx) {
  const value = ctx.oidc?.params?.organization_id;
  return value ? String(value) : undefined;
}

// signingAlg(): the algorithm of the current signing key (it follows a rotation, keys.js).
export function createOrganizationTokens({ users, signingAlg, accessTokenTtl }) {
  const checked = new WeakMap(); // ctx -> organization id that passed the checks

  // For `rotateRefreshToken`: throws Logto's errors; otherwise remembers the pass.
  async function checkAccess(ctx) {
    const organizationId = requestedOrganization(ctx);
    if (!organizationId) return;
    const { Account: account, RefreshToken: refreshToken } = ctx.oidc.entities;
    if (!account || !refreshToken) throw new Error('organization check ran outside a refresh');
    if (!users.membership(account.accountId, organizationId)) {
      const err = new errors.AccessDenied('user is not a member of the organization');
      err.status = 403;
      err.statusCode = 403;
      throw err;
    }
    if (!refreshToken.scopes.has(ORGANIZATIONS_SCOPE)) {
      throw new errors.InsufficientScope('refresh token missing required scope', ORGANIZATIONS_SCOPE);
    }
    checked.set(ctx, organizationId);
  }

  // For `extraTokenClaims`: Logto's "organization API resource" token.
  async function extraTokenClaims(ctx, token) {
    const params = ctx?.oidc?.params;
    if (params?.grant_type !== 'refresh_token' || !params.resource) return undefined;
    const organizationId = requestedOrganization(ctx);
    if (!organizationId || !(token instanceof ctx.oidc.provider.AccessToken)) return undefined;
    return { organization_id: organizationId };
  }

  // Replaces the opaque access token the built-in grant just issued with the organization token.
  async function issueOrganizationToken(ctx, provider, organizationId) {
    if (checked.get(ctx) !== organizationId) {
      throw new Error('organization access was not checked (is rotateRefreshToken still the hook?)');
    }
    const { AccessToken: issued } = ctx.oidc.entities;
    const audience = organizationUrn(organizationId);

    const at = new provider.AccessToken({
      accountId: issued.accountId,
      client: ctx.oidc.client,
      expiresWithSession: issued.expiresWithSession,
      grantId: issued.grantId,
      gty: issued.gty,
      sessionUid: issued.sessionUid,
      sid: issued.sid,
    });
    at.resourceServer = new provider.ResourceServer(audience, {
      audience,
      scope: '', // no organization permissions (see above)
      accessTokenTTL: accessTokenTtl,
      accessTokenFormat: 'jwt',
      // No kid: oidc-provider signs with its current key, so a rotation (keys.js) applies here too.
      jwt: { sign: { alg: signingAlg() } },
    });
    at.scope = '';

    await issued.destroy();
    ctx.oidc.entity('AccessToken', at);
    const value = await at.save();
    Object.assign(ctx.body, { access_token: value, expires_in: at.expiration, scope: at.scope });
  }

  // Call once, after `new Provider(...)`: wraps the built-in refresh_token grant and lets it
  // accept `organization_id`.
  function install(provider) {
    const internals = instance(provider);
    const builtIn = internals.grantTypeHandlers.get('refresh_token');
    const params = internals.grantTypeParams.get('refresh_token');
    if (!builtIn || !params) throw new Error('oidc-provider has no refresh_token grant to wrap');
    const dupes = internals.grantTypeDupes.get('refresh_token');

    async function refreshTokenWithOrganizations(ctx) {
      await builtIn(ctx);
      const organizationId = requestedOrganization(ctx);
      if (organizationId && !ctx.oidc.params.resource) {
        await issueOrganizationToken(ctx, provider, organizationId);
      }
    }

    provider.registerGrantType(
      'refresh_token',
      refreshTokenWithOrganizations,
      [...params, 'organization_id'],
      dupes ? [...dupes] : undefined,
    );
  }

  return { checkAccess, extraTokenClaims, install };
}
