// An independent relying party: npm openid-client v6, used exactly as its documentation shows,
// run against a running Mynagate provider by tests/rp_node/test_openid_client.py.
//
// Usage: node rp.mjs '<json config>'
//   config: {issuer, client_id, client_secret, redirect_uri,
//            scope?, acr_values?, auth_method? ("client_secret_post" | "client_secret_basic")}
// Protocol (one JSON object per line on stdout):
//   1. prints {"authorization_url": "..."}; the browser part is driven by the caller,
//   2. reads one line from stdin: the URL the provider redirected the browser to,
//   3. runs the token request (ID token signature checked: enableNonRepudiationChecks),
//      UserInfo and, when a refresh token came back, a refresh; prints {"summary": {...}}.
// Any failure prints {"error": {...}} and exits 1, so the caller sees what openid-client said.
import * as client from "openid-client";
import { createInterface } from "node:readline";

function describeCause(cause) {
  if (cause instanceof URLSearchParams) return Object.fromEntries(cause);
  if (cause && typeof cause === "object") return JSON.parse(JSON.stringify(cause));
  return cause;
}

function fail(stage, err) {
  const out = {
    stage,
    name: err?.name,
    code: err?.code,
    message: String(err?.message ?? err),
    error: err?.error, // OAuth error code, for AuthorizationResponseError / ResponseBodyError
    error_description: err?.error_description,
    cause: describeCause(err?.cause),
  };
  process.stdout.write(JSON.stringify({ error: out }) + "\n");
  process.exit(1);
}

function readLine() {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    rl.once("line", (line) => { resolve(line.trim()); rl.close(); });
    rl.once("close", () => reject(new Error("stdin closed before the callback URL arrived")));
  });
}

const options = JSON.parse(process.argv[2] ?? "{}");
const scope = options.scope ?? "openid profile offline_access";
const clientAuth = options.auth_method === "client_secret_basic"
  ? client.ClientSecretBasic(options.client_secret)
  : undefined; // openid-client's default for a secret: client_secret_post

let config;
try {
  config = await client.discovery(
    new URL(options.issuer), options.client_id, options.client_secret, clientAuth,
    { execute: [client.allowInsecureRequests] },
  );
  client.enableNonRepudiationChecks(config);
} catch (err) {
  fail("discovery", err);
}

// The documented flow: PKCE S256, and (because the provider advertises S256) no state and no
// nonce. The provider must then send back no state and put no nonce in the ID token.
const codeVerifier = client.randomPKCECodeVerifier();
const codeChallenge = await client.calculatePKCECodeChallenge(codeVerifier);
const parameters = {
  redirect_uri: options.redirect_uri,
  scope,
  code_challenge: codeChallenge,
  code_challenge_method: "S256",
};
if (scope.split(" ").includes("offline_access")) parameters.prompt = "consent"; // OIDC Core §11
if (options.acr_values) parameters.acr_values = options.acr_values;
const authorizationUrl = client.buildAuthorizationUrl(config, parameters);
process.stdout.write(JSON.stringify({ authorization_url: authorizationUrl.href }) + "\n");

let callbackUrl;
try {
  callbackUrl = new URL(await readLine());
} catch (err) {
  fail("callback", err);
}

let tokens;
try {
  tokens = await client.authorizationCodeGrant(config, callbackUrl, {
    pkceCodeVerifier: codeVerifier,
    idTokenExpected: true,
  });
} catch (err) {
  fail("authorization_code_grant", err);
}
const claims = tokens.claims();
if (claims === undefined) fail("id_token", new Error("no ID token in the token response"));
if ("nonce" in claims) fail("id_token", new Error("ID token carries a nonce nobody sent"));

let userinfo;
try {
  userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
} catch (err) {
  fail("userinfo", err);
}

let refreshed = null;
if (tokens.refresh_token) {
  try {
    const next = await client.refreshTokenGrant(config, tokens.refresh_token);
    const nextClaims = next.claims();
    refreshed = {
      rotated: next.refresh_token !== undefined && next.refresh_token !== tokens.refresh_token,
      token_type: next.token_type,
      id_token_claims: nextClaims ?? null,
    };
    // The new access token works too (and so the refresh really issued one).
    const again = await client.fetchUserInfo(config, next.access_token, claims.sub);
    refreshed.userinfo_sub = again.sub;
  } catch (err) {
    fail("refresh_token_grant", err);
  }
}

const summary = {
  issuer: config.serverMetadata().issuer,
  token_type: tokens.token_type,
  expires_in: tokens.expires_in,
  scope: tokens.scope,
  has_refresh_token: Boolean(tokens.refresh_token),
  id_token_claims: claims,
  userinfo,
  refreshed,
};
process.stdout.write(JSON.stringify({ summary }) + "\n");
