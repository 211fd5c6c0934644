// The exchange benchmark's reference: Node's oidc-provider issuing ES256 JWT access tokens for
// client credentials, the nearest off-the-shelf token endpoint to ours.
//
//   node bench/oidc_provider.mjs PORT [PROCESSES]
//
// Needs oidc-provider on Node's module path (bench/exchange.py installs it under var/bench/ with
// npm and sets NODE_PATH). PROCESSES > 1 forks that many workers sharing the port (node:cluster),
// to compare with a Python server's worker count. The client authenticates with client_secret_post;
// every token is a signed JWT (not stored), for the resource api://orders.
import cluster from "node:cluster";
import { generateKeyPairSync } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";

const port = Number(process.argv[2] || 3000);
const processes = Number(process.argv[3] || 1);

if (cluster.isPrimary && processes > 1) {
  for (let n = 0; n < processes; n += 1) cluster.fork();
  process.on("SIGTERM", () => {
    for (const worker of Object.values(cluster.workers)) worker.kill("SIGTERM");
    process.exit(0);
  });
} else {
  // NODE_PATH does not apply to ES modules: resolve the package from it by hand.
  const require = createRequire(path.join(process.env.NODE_PATH || process.cwd(), "noop.js"));
  const { default: Provider } = await import(require.resolve("oidc-provider"));
  const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const jwk = { ...privateKey.export({ format: "jwk" }), kid: "bench", alg: "ES256", use: "sig" };
  const resource = "api://orders";
  const provider = new Provider(`http://127.0.0.1:${port}`, {
    clients: [
      {
        client_id: "bench",
        client_secret: "bench-client-secret-0123456789abcdef",
        grant_types: ["client_credentials"],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: "client_secret_post",
        id_token_signed_response_alg: "ES256",
      },
    ],
    jwks: { keys: [jwk] },
    scopes: ["orders.read", "orders.write"],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: "orders.read orders.write",
          audience: resource,
          accessTokenTTL: 600,
          accessTokenFormat: "jwt",
          jwt: { sign: { alg: "ES256" } },
        }),
      },
    },
  });
  provider.proxy = false;
  provider.listen(port, "127.0.0.1");
  process.on("SIGTERM", () => process.exit(0));
}
