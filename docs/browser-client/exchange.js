// The token exchange from a browser: an Entra access token in, our access token out, kept in memory.
//
// Copy this module as it is. It uses nothing but fetch(): no cookies are sent (`credentials:
// "omit"`), nothing is written to localStorage, sessionStorage or IndexedDB, and a reload forgets
// every token (the next call exchanges again, which is cheap).

export const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
export const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";

// Exchange again this long before a token expires, so that a call never carries a dying token.
const EXPIRY_MARGIN_MS = 60_000;

/** The issuer refused the exchange: `error` is the RFC 6749 code, `retryAfter` seconds on a 429. */
export class ExchangeError extends Error {
  constructor(status, error, description, retryAfter) {
    super(description ? `${error}: ${description}` : error);
    this.name = "ExchangeError";
    this.status = status;
    this.error = error;
    this.retryAfter = retryAfter;
  }
}

/**
 * POST /oauth2/token once. Resolves to the answer (`access_token`, `token_type`, `expires_in`,
 * `scope`, `issued_token_type`); rejects with ExchangeError when the issuer refuses, and with a
 * TypeError when the browser cannot reach the issuer or is not allowed to read its answer (this
 * page's origin is not in the issuer's CORS_ALLOWED_ORIGINS).
 *
 * `encoding: "form"` sends application/x-www-form-urlencoded, a simple request; `"json"` sends
 * application/json, which the browser precedes with a preflight (OPTIONS) it may cache.
 */
export async function exchangeToken({ issuer, subjectToken, audience, scope, tenant, encoding = "form" }) {
  const fields = {
    grant_type: TOKEN_EXCHANGE,
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    audience,
  };
  if (scope) fields.scope = scope;
  if (tenant) fields.tenant = tenant;
  const json = encoding === "json";
  const response = await fetch(new URL("/oauth2/token", issuer), {
    method: "POST",
    headers: {
      "Content-Type": json ? "application/json" : "application/x-www-form-urlencoded",
      Accept: "application/json",
    },
    body: json ? JSON.stringify(fields) : new URLSearchParams(fields),
    credentials: "omit", // the exchange reads no cookie: the Entra token is the credential
    cache: "no-store",
    referrerPolicy: "no-referrer",
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ExchangeError(
      response.status,
      answer.error ?? "invalid_response",
      answer.error_description ?? `HTTP ${response.status}`,
      response.headers.get("Retry-After") ? Number(response.headers.get("Retry-After")) : undefined,
    );
  }
  if (typeof answer.access_token !== "string" || typeof answer.expires_in !== "number") {
    throw new ExchangeError(response.status, "invalid_response", "the answer carries no access_token");
  }
  return answer;
}

/**
 * Our answers for this page, in memory only, one per (audience, scope, tenant): `get` gives the
 * held answer while its token has more than a minute left, else exchanges again. `exchange` is
 * an async function of the request, usually exchangeToken with a fresh Entra token (see app.js).
 * Two calls at the same moment may both exchange; that is harmless.
 */
export class TokenCache {
  #exchange;
  #held = new Map();

  constructor(exchange) {
    this.#exchange = exchange;
  }

  async get(request) {
    const key = JSON.stringify([request.audience, request.scope ?? "", request.tenant ?? ""]);
    const held = this.#held.get(key);
    if (held && Date.now() < held.expiresAt - EXPIRY_MARGIN_MS) return held.answer;
    const answer = await this.#exchange(request);
    this.#held.set(key, { answer, expiresAt: Date.now() + answer.expires_in * 1000 });
    return answer;
  }

  /** Forget every token (on sign-out, or when the user changes). */
  clear() {
    this.#held.clear();
  }
}
