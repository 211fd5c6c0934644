#!/usr/bin/env python
"""The orders example's command line (migrate, seed_orders, runserver)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_api.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
