"""Identity: external identity providers (Entra ID), principals and admin users."""
