// Signing keys, and rotating them while the provider runs, as Logto's Console does
// (Sign-in keys, "rotate"): a fresh key signs everything from then on, and the JWKS lists the
// new key first and, during Logto's grace period, the previous one after it, so tokens signed
// before the rotation still verify. Logto keeps at most these two
// (`[new, ...existing].slice(0, 2)` in packages/core/src/routes/logto-config/index.ts); dropping
// the previous key at once is a rotation followed by deleting that key.
//
// oidc-provider has no public API for this. It builds its keystore once, in the constructor,
// with lib/helpers/initialize_keystore.js, which checks and normalizes the keys and stores two
// things in the provider's private per-instance state: `keystore` (private keys; every signer
// reads it at the time of signing: ID tokens in models/id_token.js, JWT access tokens and so
// organization tokens in models/formats/jwt.js, and id_token_hint checks) and `jwks` (the public
// keys, which actions/jwks.js serves as they are). Running that same function again with the new
// key set replaces both at once, with the checks and public-key projection of this very
// oidc-provider version, instead of a copy of them here. The signer takes the first key that
// fits the algorithm (a stable sort by score, all of ours score the same), hence new key first.
// Neither path is behind an `exports` map, so both stay importable; rotateSigningKey() checks
// the outcome and throws if a newer oidc-provider ever stops working this way.
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import initializeKeystore from 'oidc-provider/lib/helpers/initialize_keystore.js';
import instance from 'oidc-provider/lib/helpers/weak_cache.js';

export function signingKey(alg) {
  let pair;
  if (alg === 'ES384') {
    pair = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  } else if (alg === 'RS256') {
    pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
  } else {
    throw new Error(`IDP_ID_TOKEN_ALG must be ES384 or RS256, not ${alg}`);
  }
  // Node 20 can deadlock when a JWK is exported from the key object that generateKeyPairSync
  // returned (a GC during the export runs the finished key-generation job's destructor, which
  // takes the lock the export holds; seen here as a provider that never printed its line).
  // Exporting from a fresh copy of the key avoids sharing that lock.
  const pem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' });
  const jwk = createPrivateKey(pem).export({ format: 'jwk' });
  return { ...jwk, kid: randomBytes(16).toString('base64url'), alg, use: 'sig' };
}

// The key oidc-provider signs `alg` tokens with right now (a private JWK).
function currentKey(provider, alg) {
  const [key] = instance(provider).keystore.selectForSign({ alg, use: 'sig' });
  return key;
}

// Makes a fresh `alg` key the signing key. keepPrevious: the JWKS is [new, previous] (Logto's
// grace period); otherwise [new] alone, and tokens signed before no longer verify.
export function rotateSigningKey(provider, alg, { keepPrevious = true } = {}) {
  const previous = currentKey(provider, alg);
  const next = signingKey(alg);
  initializeKeystore.call(provider, { keys: keepPrevious && previous ? [next, previous] : [next] });

  const jwksKids = instance(provider).jwks.keys.map((key) => key.kid);
  if (currentKey(provider, alg)?.kid !== next.kid || jwksKids[0] !== next.kid) {
    throw new Error('oidc-provider did not take the rotated key (has its keystore changed?)');
  }
  return { kid: next.kid, previousKid: previous?.kid, jwksKids };
}
