"""The exchange benchmark's baseline: a bare DRF view doing only the unavoidable work.

It verifies one RS256 token with a public key it already holds and signs one ES256 token, with no
database, no cache and no throttle: the floor that any real exchange sits on. Served by gunicorn
with the same worker count as the service (``gunicorn bench.baseline_app:application``).
Its keys come from BASELINE_RSA_PUBLIC_PEM (the fake Entra's key, PEM) in the environment.
"""

import os
import time

import django
import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-baseline-not-a-secret-0123456789abcdefghijklmnopqrstuvwxyz",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "rest_framework"],
    MIDDLEWARE=[],
    DATABASES={},
    REST_FRAMEWORK={
        "DEFAULT_AUTHENTICATION_CLASSES": [],
        "DEFAULT_PERMISSION_CLASSES": [],
        "UNAUTHENTICATED_USER": None,
    },
)
django.setup()

from django.urls import path  # noqa: E402
from rest_framework.parsers import FormParser  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

RSA_PUBLIC = load_pem_public_key(os.environ["BASELINE_RSA_PUBLIC_PEM"].encode())
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
AUDIENCE = os.environ.get("BASELINE_AUDIENCE", "api://issuer")


class BaselineExchange(APIView):
    parser_classes = [FormParser]

    def post(self, request):
        claims = jwt.decode(
            request.data["subject_token"],
            RSA_PUBLIC,
            algorithms=["RS256"],
            audience=AUDIENCE,
            options={"verify_iss": False},
        )
        now = int(time.time())
        token = jwt.encode(
            {"sub": claims["oid"], "iat": now, "exp": now + 600, "aud": "api://orders"},
            SIGNING_KEY,
            algorithm="ES256",
            headers={"typ": "at+jwt", "kid": "baseline"},
        )
        return Response({"access_token": token, "token_type": "Bearer", "expires_in": 600})


urlpatterns = [path("oauth2/token", BaselineExchange.as_view())]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
