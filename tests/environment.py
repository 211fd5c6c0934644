"""Pytest plugin loaded before Django: a development environment for the test run.

Real environment variables win (CI points DATABASE_URL and CELERY_BROKER_URL at PostgreSQL and
Redis); anything unset gets a safe test default so that a plain ``pytest`` works anywhere.
"""

import os
import tempfile

os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("HTTPS", "false")
os.environ.setdefault("KEY_ENCRYPTION_KEY", "test-key-encryption-key-0123456789abcdef")
os.environ.setdefault("TOKEN_ISSUER", "https://issuer.test")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("VAR_DIR", tempfile.mkdtemp(prefix="issuer-test-var-"))
os.environ.pop("ENV_FILE", None)
