// Signing keys, and rotating them while the provider runs, as Logto's Console does (Sign-in keys,
// "rotate", or `POST /api/configs/oidc/private-keys/rotate` with `signingKeyAlgorithm`): a fresh
// key, of the same type or the other one, signs everything from then on, and the JWKS lists the
// new key first and, during Logto's grace period, the previous one after it, so tokens signed
// before the rotation still verify. Logto keeps at most these two
// (`[new, ...existing].slice(0, 2)`); dropping the previous key at once is a rotation followed by
// deleting that key.
//
// What Logto's source says (logto-io/logto at v1.42.0, read for this file, not copied):
// - Keys (packages/cli/src/commands/database/utils.ts, generateOidcPrivateKey): EC is P-384
//   ("secp384r1"), RSA is 4096 bits; both stored as PKCS#8 PEM.
// - The JWKs handed to oidc-provider (packages/core/src/utils/jwks.ts, exportJWK) are jose's
//   export of the key plus a `kid` only, no `alg` and no `use`: kid = base64url(SHA-256(JSON of
//   the required members in lexicographic order)), i.e. the RFC 7638 thumbprint, for EC
//   (`{crv, kty, x, y}`) as for RSA (`{e, kty, n}`). Keys go to oidc-provider current key first
//   (packages/schemas/src/utils/oidc-private-key.ts, getOidcProviderPrivateKeys).
// - oidc-provider then fills in `use: "sig"`, and `alg` only where a single algorithm fits the
//   key: ES384 for a P-384 key; an RSA key fits six (PS256..RS512), so it is published without
//   `alg` (lib/helpers/initialize_keystore.js).
// - enabledJWA.idTokenSigningAlgValues is ['RS256', 'PS256', 'ES256', 'ES384', 'ES512']
//   (packages/core/src/oidc/init.ts). oidc-provider's id_token_signing_alg_values_supported is
//   not that list but the algorithms of the keys held, key by key in key order, each key's in
//   oidc-provider's order, kept if enabled: EC alone ["ES384"], RSA alone ["PS256","RS256"],
//   [RSA, EC] ["PS256","RS256","ES384"], [EC, RSA] ["ES384","PS256","RS256"]. (Logto's fork of
//   oidc-provider changes none of this.) Seen on a real 1.42 after EC → RSA:
//   ["ES384","PS256","RS256"], which is that rule for [EC, RSA]: a staged rotation (a grace
//   period, PRIVATE_KEY_ROTATION_GRACE_PERIOD, 0 by default) hands oidc-provider [Current, Next,
//   Previous], so the EC key stays first, and signing, until the RSA key is activated. The
//   immediate rotation done here is [new, previous], as after that activation.
// - The ID token algorithm is the client's `id_token_signed_response_alg`, which Logto sets to
//   ES384 when the current key is EC and leaves to oidc-provider's default, RS256, when it is RSA
//   (packages/core/src/env-set/oidc.ts jwkSigningAlg, oidc/utils.ts getConstantClientMetadata);
//   JWT access tokens use the same (oidc/resource.ts). A rotation reloads the tenant, that is a
//   new Provider with the new keys and client metadata.
//
// oidc-provider has no public API for any of this at run time. It builds its keystore once, in
// the constructor, with lib/helpers/initialize_keystore.js, which checks and normalizes the keys
// and stores, in the provider's private per-instance state, `keystore` (private keys; every
// signer reads it at the time of signing: ID tokens in models/id_token.js, JWT access tokens and
// so organization tokens in models/formats/jwt.js, and id_token_hint checks) and `jwks` (the
// public keys, which actions/jwks.js serves as they are); it also adds each key's algorithms to
// `configuration.idTokenSigningAlgValues` (and the userinfo, introspection and authorization
// lists), which discovery serves and the client schema checks `id_token_signed_response_alg`
// against. Those lists start as the HS algorithms of enabledJWA (helpers/configuration.js,
// defaultSigAlg) and the keys only ever add to them, so they are first cut back to that (here,
// with no HS algorithm enabled, to nothing), then the same function runs again with the new key
// set: both stores and the algorithm lists are what a fresh Provider, as Logto's reloaded tenant,
// would have, with the checks of this very oidc-provider version instead of a copy here.
// Static clients are kept in `staticClients` (a Map from client_id to the registered metadata,
// which Client.find validates into a Client on first use, lib/helpers/initialize_clients.js and
// models/client.js); each is put back as metadata with the new `id_token_signed_response_alg`,
// so the next request builds the client again, as Logto's reloaded tenant does. The signer takes
// the first key that fits the algorithm (a stable sort by score), hence new key first. None of
// these paths is behind an `exports` map, so they stay importable; rotateSigningKey() checks the
// outcome and throws if a newer oidc-provider ever stops working this way.
import { createHash, createPrivateKey, generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import initializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

// The signing algorithms this provider makes keys for (IDP_ID_TOKEN_ALG, /test/rotate-keys).
export const SIGNING_ALGS = ['ES384', 'RS256'];
// Logto's enabledJWA for ID tokens and userinfo (see above).
export const LOGTO_ENABLED_SIGNING_ALGS = ['RS256', 'PS256', 'ES256', 'ES384', 'ES512'];

// The configuration lists initialize_keystore.js adds each key's signing algorithms to.
const KEY_ALG_LISTS = [
  'idTokenSigningAlgValues', 'userinfoSigningAlgValues', 'introspectionSigningAlgValues',
  'authorizationSigningAlgValues',
];

// RFC 7638 JWK thumbprint (SHA-256, base64url): the required members in lexicographic order.
export function jwkThumbprint(jwk) {
  let members;
  if (jwk.kty === 'EC') members = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  else if (jwk.kty === 'RSA') members = { e: jwk.e, kty: jwk.kty, n: jwk.n };
  else throw new Error(`no thumbprint for kty ${jwk.kty}`);
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url');
}

// The algorithm a key signs ID tokens with at Logto: ES384 for its P-384 keys, RS256 (the
// default) for RSA ones.
export function signingAlgOf(jwk) {
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') return 'ES384';
  if (jwk.kty === 'RSA') return 'RS256';
  throw new Error(`unexpected signing key ${jwk.kty} ${jwk.crv ?? ''}`);
}

// A new private JWK as Logto makes them: P-384 for ES384, RSA 4096 for RS256; kid the RFC 7638
// thumbprint; no `alg` and no `use` (oidc-provider adds them, see above).
export async function signingKey(alg) {
  let pem;
  const encoding = {
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  };
  if (alg === 'ES384') {
    ({ privateKey: pem } = await promisify(generateKeyPair)('ec', { namedCurve: 'P-384', ...encoding }));
  } else if (alg === 'RS256') {
    ({ privateKey: pem } = await promisify(generateKeyPair)('rsa', { modulusLength: 4096, ...encoding }));
  } else {
    throw new Error(`the signing algorithm must be ES384 or RS256, not ${alg}`);
  }
  // The JWK is exported from a key object made from the PEM, not from one the key generation
  // returned: on Node 20 the latter can deadlock (a GC during the export runs the finished
  // generation job's destructor, which takes the lock the export holds).
  const jwk = createPrivateKey(pem).export({ format: 'jwk' });
  return { ...jwk, kid: jwkThumbprint(jwk) };
}

// The key oidc-provider signs with now: the first of its keystore (a private JWK).
function currentKey(provider) {
  const [key] = instance(provider).keystore;
  return key;
}

// The algorithm everything is signed with now (ID tokens, JWT access tokens, organization tokens).
export function currentSigningAlg(provider) {
  return signingAlgOf(currentKey(provider));
}

// Makes a fresh key the signing key. alg: ES384 or RS256 (default: the current key's). keepPrevious:
// the JWKS is [new, previous] (Logto's grace period); otherwise [new] alone, and tokens signed
// before no longer verify. clients: the static clients' registered metadata, whose
// `id_token_signed_response_alg` follows the new key.
export async function rotateSigningKey(provider, { alg, keepPrevious = true, clients = [] } = {}) {
  const nextAlg = alg ?? currentSigningAlg(provider);
  const next = await signingKey(nextAlg);

  const internals = instance(provider);
  const previous = currentKey(provider); // read after the await: the key current right now
  const { configuration } = internals;
  for (const list of KEY_ALG_LISTS) {
    if (!Array.isArray(configuration[list])) {
      throw new Error(`oidc-provider has no configuration.${list} (has its keystore changed?)`);
    }
    configuration[list] = configuration[list].filter((a) => a.startsWith('HS'));
  }
  const keys = keepPrevious && previous ? [next, previous] : [next];
  initializeKeystore.call(provider, { keys });
  for (const metadata of clients) {
    internals.staticClients.set(
      metadata.client_id,
      structuredClone({ ...metadata, id_token_signed_response_alg: nextAlg }),
    );
  }

  const jwksKids = internals.jwks.keys.map((key) => key.kid);
  const [signer] = internals.keystore.selectForSign({ alg: nextAlg, use: 'sig' });
  if (signer?.kid !== next.kid || jwksKids[0] !== next.kid) {
    throw new Error('oidc-provider did not take the rotated key (has its keystore changed?)');
  }
  const algs = configuration.idTokenSigningAlgValues;
  const held = new Set(keys.map((key) => key.kty));
  if (!algs.includes(nextAlg) || algs.some((a) => !held.has(a.startsWith('ES') ? 'EC' : 'RSA'))) {
    throw new Error(`oidc-provider's ID token algorithms [${algs}] do not follow the keys (has its keystore changed?)`);
  }
  for (const { client_id: clientId } of clients) {
    // eslint-disable-next-line no-await-in-loop
    const client = await provider.Client.find(clientId);
    if (client?.idTokenSignedResponseAlg !== nextAlg) {
      throw new Error(`oidc-provider's client ${clientId} did not take ${nextAlg} (have its static clients changed?)`);
    }
  }
  return { kid: next.kid, previousKid: previous?.kid, jwksKids, alg: nextAlg };
}
