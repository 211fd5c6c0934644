"""Domain errors of key management; the HTTP layer maps them to responses in one place."""


class KeysError(Exception):
    """Base of every key-management error."""


class NoActiveKey(KeysError):
    """There is no active signing key, so nothing can be signed (the exchange answers 503)."""

    def __init__(self) -> None:
        super().__init__("no active signing key: run `manage.py rotate_keys` to create one")


class UnknownKey(KeysError):
    """No signing key has this kid."""

    def __init__(self, kid: str) -> None:
        # The kid comes from an operator or a form: show a bounded, printable excerpt only.
        shown = "".join(ch for ch in kid[:64] if ch.isprintable())
        super().__init__(f"no signing key with kid {shown!r}")
        self.kid = kid


class KeyNotPublished(KeysError):
    """A retired key is already gone from the JWKS: there is nothing to revoke."""

    def __init__(self, kid: str) -> None:
        super().__init__(f"{kid} is not published, nothing to revoke")
        self.kid = kid


class KeyDecryptionFailed(KeysError):
    """A stored private key cannot be decrypted with any configured KEY_ENCRYPTION_KEY."""

    def __init__(self, kid: str, reason: str = "") -> None:
        shown = "".join(ch for ch in str(kid)[:64] if ch.isprintable())
        super().__init__(
            f"KEY_ENCRYPTION_KEY: cannot decrypt signing key {shown}; "
            + (
                reason
                or "set the secret it was encrypted under (a comma list keeps old secrets for decryption), "
                "then run `manage.py reencrypt_keys`"
            )
        )
        self.kid = kid


class KeyIntegrityFailed(KeyDecryptionFailed):
    """A key row is corrupt or was not written by this service: its sealed key does not open under a
    configured secret, or its public key is not bound to its private key. It is never published and
    never signs; revoking it needs no private material."""

    def __init__(self, kid: str, reason: str) -> None:
        # The kid may come from whoever wrote the row: show a bounded, printable excerpt only.
        shown = "".join(ch for ch in str(kid)[:64] if ch.isprintable())
        KeysError.__init__(
            self,
            f"signing key {shown} failed its integrity check ({reason}); it is not published and does "
            f"not sign: revoke it with `manage.py rotate_keys --revoke {shown}` or in the portal",
        )
        self.kid = kid
        self.reason = reason


class KeyStoreUnavailable(KeysError):
    """The key store cannot sign or answer now (a vault throttled, slow, failing, refusing the
    credential, or answering garbage): the exchange answers 503 with Retry-After."""

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after
