// The example page: where the Entra token comes from, and what the page does with our answer.
import { ExchangeError, TokenCache, exchangeToken } from "./exchange.js";

const form = document.querySelector("#exchange");
const fields = form.elements;
fields.issuer.value = new URLSearchParams(location.search).get("issuer") ?? "http://127.0.0.1:8000";

// --- the Entra token --------------------------------------------------------------------------
// A real deployment signs the user in with MSAL.js (@azure/msal-browser) and asks it for a token
// for our API before each exchange; MSAL renews it silently and keeps its own cache:
//
//   const msalApp = await msal.PublicClientApplication.createPublicClientApplication({
//     auth: {
//       clientId: "<the SPA's application id>",
//       authority: "https://login.microsoftonline.com/<directory id>",
//       redirectUri: location.origin,
//     },
//   });
//   await msalApp.handleRedirectPromise();
//
//   async function entraToken() {
//     const request = {
//       scopes: ["api://<our API's application id>/access_as_user"],
//       account: msalApp.getActiveAccount() ?? msalApp.getAllAccounts()[0],
//     };
//     try {
//       return (await msalApp.acquireTokenSilent(request)).accessToken;
//     } catch (error) {
//       if (error instanceof msal.InteractionRequiredAuthError) {
//         await msalApp.acquireTokenRedirect(request); // leaves the page; signed in on return
//       }
//       throw error;
//     }
//   }
//
// Here, for trying it locally, the token is the one pasted into the page.
async function entraToken() {
  const token = fields.subject_token.value.trim();
  if (!token) throw new Error("paste an Entra access token first");
  return token;
}

// --- our token, in memory -----------------------------------------------------------------------
const tokens = new TokenCache(async (request) =>
  exchangeToken({
    ...request,
    issuer: fields.issuer.value,
    subjectToken: await entraToken(),
    encoding: fields.encoding.value,
  }),
);
// Another issuer, Entra token or body encoding: the held answers no longer apply.
form.addEventListener("input", () => tokens.clear());

// An API call then sends it as a bearer token:
//   const { access_token } = await tokens.get({ audience: "api://orders" });
//   await fetch("https://orders.example.com/orders", { headers: { Authorization: `Bearer ${access_token}` } });

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  show({ answer: null, error: null });
  try {
    const answer = await tokens.get({
      audience: fields.audience.value.trim(),
      scope: fields.scope.value.trim(),
      tenant: fields.tenant.value.trim(),
    });
    show({ answer, error: null });
  } catch (error) {
    show({ answer: null, error });
  }
});

function show({ answer, error }) {
  document.querySelector("#answer").hidden = !answer;
  document.querySelector("#error").hidden = !error;
  if (answer) {
    for (const name of ["token_type", "expires_in", "scope"]) {
      document.getElementById(name).textContent = String(answer[name]);
    }
    // Enough to see it arrived; the token itself is for the Authorization header, not the screen.
    document.getElementById("access_token").textContent =
      `${answer.access_token.slice(0, 12)}… (${answer.access_token.length} characters, held in memory)`;
  }
  if (error) document.querySelector("#error").textContent = describe(error);
}

function describe(error) {
  if (error instanceof ExchangeError) {
    const retry = error.retryAfter ? ` (retry in ${error.retryAfter} s)` : "";
    return `The issuer refused the exchange (${error.status}): ${error.message}${retry}`;
  }
  if (error instanceof TypeError) {
    return (
      "The browser could not read the issuer's answer: the issuer is unreachable, or this page's " +
      `origin (${location.origin}) is not in its CORS_ALLOWED_ORIGINS.`
    );
  }
  return error.message;
}
