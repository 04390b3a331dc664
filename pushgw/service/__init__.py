"""
The service layer: every mobile-push operation of SNS, with SNS's rules.

Both API encodings (SNS Query and JSON) call `Service`; it knows nothing of HTTP
or providers, only the store.
"""

from __future__ import annotations

from pushgw.service.apps import AppsMixin
from pushgw.service.endpoints import EndpointsMixin
from pushgw.service.publish import PublishMixin


class Service(AppsMixin, EndpointsMixin, PublishMixin):
    """Platform applications, endpoints, topics, subscriptions, tags, publish."""


__all__ = ["Service"]
