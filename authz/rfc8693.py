"""RFC 8693 identifiers: the token-exchange grant type and the token types a request and answer name.

Plain constants without Django, so the exchange, the RFC 8414 metadata and the benches (which run
no Django) read the one spelling.
"""

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
# What a client may present as its subject token: Entra's access token, by either name.
SUBJECT_TOKEN_TYPES = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)
