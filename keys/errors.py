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

    def __init__(self, kid: str) -> None:
        super().__init__(
            f"KEY_ENCRYPTION_KEY: cannot decrypt signing key {kid}; set the secret it was encrypted "
            "under (a comma list keeps old secrets for decryption), then run `manage.py reencrypt_keys`"
        )
        self.kid = kid
