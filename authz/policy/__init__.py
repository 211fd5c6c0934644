"""Policy as code: the policy file's import and export (see ``services``)."""

from authz.policy.document import KINDS, PolicyError
from authz.policy.planner import ImportReport
from authz.policy.services import policy_dumps, policy_export, policy_import

__all__ = ("KINDS", "ImportReport", "PolicyError", "policy_dumps", "policy_export", "policy_import")
