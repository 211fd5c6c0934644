"""The portal for the authorization model: tenants, permissions, audiences, roles, grants and labels.

Every admin keeps a history (django-simple-history) of who changed what; the invariants live in
the models' ``clean()`` and the UI parsing in ``authz.forms``, so these classes only arrange pages.
Who may see and write what is decided in one place, ``tenant_scope``; its queries are selectors.
Importing the page modules here registers them when Django discovers ``authz.admin``.
"""

from authz.admin import catalogue, grants, labels, roles, tenants

__all__ = ["catalogue", "grants", "labels", "roles", "tenants"]
