// The provider's users (Logto "users"), kept in memory for the life of the process.
import { randomInt } from 'node:crypto';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

// Logto user ids: 12 lowercase alphanumerics.
export function newUserId() {
  let id = '';
  for (let i = 0; i < 12; i += 1) id += ALPHABET[randomInt(ALPHABET.length)];
  return id;
}

const CREATED = Date.UTC(2026, 0, 15, 9, 30, 0); // epoch milliseconds, as Logto sends them

// Logto organizations (RFC 0001), with fixed ids so tests and the demo can name them: org-acme
// and org-globex (alice's), then org-0001 … org-0270 (carol's and dave's; Logto's ids are 12
// lowercase alphanumerics, these are readable instead). A membership lists the user's
// organization roles there (`{ name }`, giving `<org id>:<name>` in `organization_roles`); only
// carol and dave have any, and there are no organization permissions.
const NUMBERED_ORGANIZATIONS = 270;
export const numberedOrganizationId = (n) => `org-${String(n).padStart(4, '0')}`;
export const ORGANIZATIONS = Object.freeze([
  { id: 'org-acme', name: 'Acme', description: null },
  { id: 'org-globex', name: 'Globex', description: null },
  ...Array.from({ length: NUMBERED_ORGANIZATIONS }, (_, i) => ({
    id: numberedOrganizationId(i + 1),
    name: `Organization ${String(i + 1).padStart(4, '0')}`,
    description: null,
  })),
]);

// Users whose ID tokens are big, as real Logto's grow: many organizations, organization roles in
// each (cycled through these sets of Logto organization role names), and user roles (the `roles`
// claim). Sizes of the compact ES384 ID token when signed in with `openid profile email
// offline_access urn:logto:scope:organizations urn:logto:scope:organization_roles roles`:
// carol about 8 KB (member of org-0001 … org-0130, 8 user roles), dave about 16 KB (all of
// org-0001 … org-0270, 20 user roles).
const ORGANIZATION_ROLE_SETS = [
  ['admin', 'member'],
  ['member'],
  ['billing-manager', 'member'],
  ['viewer'],
  ['developer', 'member'],
];
function numberedMemberships(count) {
  return Array.from({ length: count }, (_, i) => ({
    id: numberedOrganizationId(i + 1),
    roles: ORGANIZATION_ROLE_SETS[i % ORGANIZATION_ROLE_SETS.length].map((name) => ({ name })),
  }));
}
const CAROL_ORGANIZATIONS = 130;
const DAVE_ORGANIZATIONS = NUMBERED_ORGANIZATIONS;
const USER_ROLES = [
  'support-agent', 'content-editor', 'analytics-viewer', 'billing-admin', 'release-manager',
  'security-auditor', 'customer-success', 'data-exporter', 'integration-developer', 'moderator',
  'translator', 'qa-tester', 'incident-responder', 'sales-representative', 'marketing-editor',
  'finance-approver', 'hr-viewer', 'legal-reviewer', 'partner-manager', 'workspace-owner',
];

export function createUserStore({ endpoint }) {
  const users = [
    {
      id: 'k3v9x2mq7pza',
      username: 'alice',
      password: 'alice-password-1',
      name: 'Alice Example',
      email: 'alice@example.com',
      picture: null,
      createdAt: CREATED,
      updatedAt: CREATED,
      identities: {},
      organizations: [{ id: 'org-acme', roles: [] }, { id: 'org-globex', roles: [] }],
    },
    {
      id: 'b8n3w6c1z5dq',
      username: 'bob',
      password: 'bob-password-1',
      name: 'Bob Example',
      email: 'bob@example.com',
      picture: `${endpoint}/avatars/bob.svg`,
      createdAt: CREATED + 60_000,
      updatedAt: CREATED + 60_000,
      identities: {},
      organizations: [],
    },
    {
      id: 'c4r7l2q9m1xe',
      username: 'carol',
      password: 'carol-password-1',
      name: 'Carol Example',
      email: 'carol@example.com',
      picture: null,
      createdAt: CREATED + 120_000,
      updatedAt: CREATED + 120_000,
      identities: {},
      organizations: numberedMemberships(CAROL_ORGANIZATIONS),
      roles: USER_ROLES.slice(0, 8),
    },
    {
      id: 'd5v8e3n6w2ka',
      username: 'dave',
      password: 'dave-password-1',
      name: 'Dave Example',
      email: 'dave@example.com',
      picture: null,
      createdAt: CREATED + 180_000,
      updatedAt: CREATED + 180_000,
      identities: {},
      organizations: numberedMemberships(DAVE_ORGANIZATIONS),
      roles: USER_ROLES.slice(),
    },
  ];

  return {
    demoUsers: users.map(({ username, password, name, email }) => ({ username, password, name, email })),

    byId(id) {
      return users.find((u) => u.id === id);
    },

    // The membership of user `id` in organization `organizationId`, or undefined.
    membership(id, organizationId) {
      return users.find((u) => u.id === id)?.organizations.find((m) => m.id === organizationId);
    },

    checkPassword(username, password) {
      const user = users.find((u) => u.username && u.username === username);
      return user && user.password === password ? user : undefined;
    },

    // Find the user linked to this social identity, or create one (Logto's "sign in with a new
    // social identity creates an account" behaviour). Profile fields are synced on each sign-in.
    linkSocial(target, userId, details) {
      const now = Date.now();
      let user = users.find((u) => u.identities[target]?.userId === userId);
      if (!user) {
        user = {
          id: newUserId(),
          username: null,
          password: null,
          name: details.name ?? null,
          email: details.email ?? null,
          picture: null,
          createdAt: now,
          updatedAt: now,
          identities: {},
          organizations: [],
        };
        users.push(user);
      } else {
        user.name = details.name ?? user.name;
        user.email = details.email ?? user.email;
        user.updatedAt = now;
      }
      user.identities[target] = { userId, details };
      return user;
    },
  };
}

// Claims as Logto gives them. `use` is 'id_token' or 'userinfo'; oidc-provider masks the result
// by the granted scopes (see the `claims` map in idp.js).
export function claimsFor(user, use) {
  const claims = {
    sub: user.id,
    name: user.name,
    username: user.username,
    preferred_username: user.username,
    picture: user.picture,
    created_at: user.createdAt,
    updated_at: user.updatedAt,
    email: user.email,
    email_verified: Boolean(user.email),
    // Logto: the names of the user's roles (only carol and dave have any).
    roles: [...(user.roles ?? [])],
    // Logto: ids of the user's organizations, and `<organization id>:<role name>` per role.
    organizations: user.organizations.map((m) => m.id),
    organization_roles: user.organizations.flatMap((m) => m.roles.map((r) => `${m.id}:${r.name}`)),
  };
  if (use === 'userinfo') {
    claims.identities = structuredClone(user.identities);
    claims.sso_identities = [];
    claims.custom_data = {};
    // Not in the ID token: Logto's default ID token settings leave `organization_data` out.
    claims.organization_data = user.organizations.map((m) => {
      const { id, name, description } = ORGANIZATIONS.find((o) => o.id === m.id);
      return { id, name, description };
    });
  }
  return claims;
}
