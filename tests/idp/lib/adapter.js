// In-memory storage adapter for oidc-provider, with Logto's refresh-token reuse window.
//
// Logto keeps a used (rotated) refresh token usable for a few seconds (3 by default), so a
// client whose response got lost can retry. oidc-provider has no setting for that: once a
// refresh token is `consumed`, presenting it again revokes the whole grant. This adapter
// records when a refresh token was first consumed and hides `consumed` from find() until the
// window has passed; after it, oidc-provider's own reuse detection revokes the grant.

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
]);

export function createAdapterFactory({ refreshReuseSeconds = 3 } = {}) {
  const store = new Map(); // key -> { payload, expiresAt (ms or Infinity) }
  const grants = new Map(); // grantId -> Set(key)
  const sessionUids = new Map(); // uid -> session id
  const consumedAt = new Map(); // key -> ms of first consumption
  let writes = 0;

  const live = (key) => {
    const entry = store.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= Date.now()) {
      remove(key);
      return undefined;
    }
    return entry;
  };

  function remove(key) {
    const entry = store.get(key);
    store.delete(key);
    consumedAt.delete(key);
    if (!entry) return;
    const { grantId, uid } = entry.payload;
    if (grantId && grants.has(grantId)) {
      grants.get(grantId).delete(key);
      if (grants.get(grantId).size === 0) grants.delete(grantId);
    }
    if (uid && sessionUids.get(uid) === key) sessionUids.delete(uid);
  }

  function sweep() {
    const now = Date.now();
    for (const [key, entry] of store) {
      if (entry.expiresAt <= now) remove(key);
    }
  }

  class MemoryAdapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      if (store.has(key)) remove(key);
      const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity;
      store.set(key, { payload: structuredClone(payload), expiresAt });
      if (GRANTABLE.has(this.model) && payload.grantId) {
        if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
        grants.get(payload.grantId).add(key);
      }
      if (this.model === 'Session' && payload.uid) sessionUids.set(payload.uid, key);
      writes += 1;
      if (writes % 500 === 0) sweep();
    }

    async find(id) {
      const key = this.key(id);
      const entry = live(key);
      if (!entry) return undefined;
      const payload = structuredClone(entry.payload);
      if (this.model === 'RefreshToken' && payload.consumed && consumedAt.has(key)) {
        if (Date.now() - consumedAt.get(key) < refreshReuseSeconds * 1000) {
          delete payload.consumed;
        }
      }
      return payload;
    }

    async findByUid(uid) {
      const key = sessionUids.get(uid);
      if (!key) return undefined;
      const entry = live(key);
      return entry ? structuredClone(entry.payload) : undefined;
    }

    async findByUserCode() {
      return undefined;
    }

    async consume(id) {
      const key = this.key(id);
      const entry = live(key);
      if (!entry) return;
      entry.payload.consumed = Math.floor(Date.now() / 1000);
      if (!consumedAt.has(key)) consumedAt.set(key, Date.now());
    }

    async destroy(id) {
      remove(this.key(id));
    }

    async revokeByGrantId(grantId) {
      const keys = grants.get(grantId);
      if (!keys) return;
      for (const key of [...keys]) {
        if (key.startsWith(`${this.model}:`)) remove(key);
      }
    }
  }

  return MemoryAdapter;
}
