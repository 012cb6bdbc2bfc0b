"""The site tests record deploys with the deploys feature's factory."""

from tests.deploys.conftest import record

__all__ = ["record"]
