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

// Logto organizations (RFC 0001), with fixed ids so tests and the demo can name them. A
// membership lists the user's organization roles there (`{ name }`, giving `<org id>:<name>` in
// `organization_roles`); nobody has one, and there are no organization permissions.
export const ORGANIZATIONS = Object.freeze([
  { id: 'org-acme', name: 'Acme', description: null },
  { id: 'org-globex', name: 'Globex', description: null },
]);

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
    roles: [],
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
