"""Helpers every app uses: environment readers, metrics, cache, logs, Entra ids, strict JSON.

Nothing here imports an app (``accounts``, ``authz``, ``keys``) or ``config``: the apps depend on these
helpers, never the reverse, and the wiring in ``config`` sits on top of everything (import-linter
enforces it, see pyproject.toml).
"""
