// The reference peer for bench/run.py: panva oidc-provider v9, configured like Mynagate's
// bench client (pairwise subjects, PKCE S256, one confidential client_secret_basic client,
// RS256 ID tokens), in memory (its default adapter) with the dev interactions for the
// one-time login + consent. Configuration comes from the environment (bench/run.py sets it).
import crypto from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PEER_PORT || 3000);
const issuer = `http://127.0.0.1:${port}`;
// A per-run salt: the pairwise sub must not be guessable from the account id alone.
const pairwiseSalt = crypto.randomBytes(16).toString('hex');
// An RS256 key of our own, so ID tokens are signed like Mynagate's (not the dev keys).
const signingKey = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ format: 'jwk' });

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.PEER_CLIENT_ID,
    client_secret: process.env.PEER_CLIENT_SECRET,
    redirect_uris: [process.env.PEER_REDIRECT_URI],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    subject_type: 'pairwise',
  }],
  subjectTypes: ['public', 'pairwise'],
  pairwiseIdentifier: async (ctx, accountId, client) => crypto.createHash('sha256')
    .update(client.sectorIdentifier).update(accountId).update(pairwiseSalt)
    .digest('base64url'),
  jwks: { keys: [{ ...signingKey, kid: 'bench-rs256', alg: 'RS256', use: 'sig' }] },
  // PKCE (S256 is the only method v9 supports) for every client, as Mynagate requires it.
  pkce: { required: () => true },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  features: { devInteractions: { enabled: true } },
  findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  // Rotate on every use, as Mynagate does (v9 rotates confidential clients' tokens only
  // late in their life by default).
  rotateRefreshToken: () => true,
});
provider.proxy = false;

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`oidc-provider listening on ${issuer}\n`);
});
