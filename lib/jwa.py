"""The JSON Web Algorithms (RFC 7518 §3) our tokens may be signed with, named once for every layer.

``KEY_ALGORITHM`` is checked against this list when the settings load, before any app exists, so it
lives here rather than in ``keys``; ``keys.stores`` implements every entry, and the key model's
choices, the JWKS schema and the RFC 8414 metadata are all read from it.
"""

# Name (as in a JWS header's ``alg``) and what it is.
SIGNING_ALGORITHMS = {
    "ES256": "ECDSA P-256, SHA-256",
    "RS256": "RSA PKCS#1 v1.5, SHA-256",
    "PS256": "RSA-PSS, SHA-256",
}
