"""The kit is a package of its own: ``pip install ./downstream`` builds a wheel that needs only
cryptography, with the adapters' frameworks as extras, and ships its type information."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser

from tests.support.servers import ROOT


def test_the_kit_builds_a_wheel_that_depends_on_cryptography_alone(tmp_path):
    subprocess.run(  # noqa: S603 (our interpreter, our package)
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            tmp_path,
            ROOT / "downstream",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("issuer_verify-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata_name = next(name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())

    modules = {name for name in names if name.startswith("issuer_verify/")}
    assert {"issuer_verify/__init__.py", "issuer_verify/verifier.py", "issuer_verify/py.typed"} <= modules
    assert {"issuer_verify/django.py", "issuer_verify/fastapi.py"} <= modules
    assert not any("examples" in name or name.startswith("tests/") for name in names)
    assert metadata["Name"] == "issuer-verify"
    requirements = metadata.get_all("Requires-Dist")
    core = [requirement for requirement in requirements if "extra ==" not in requirement]
    assert core == ["cryptography>=42"]
    assert set(metadata.get_all("Provides-Extra")) == {"django", "fastapi"}
