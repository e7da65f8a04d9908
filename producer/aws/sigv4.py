"""SigV4 for AWS HTTP endpoints other than Firehose (the OpenSearch Service domain that audit
reads): botocore's signer and the SDK's credential chain, as the producer signs Firehose calls.
https://docs.aws.amazon.com/opensearch-service/latest/developerguide/request-signing.html
"""

from __future__ import annotations

import hashlib
import inspect
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiobotocore.session import get_session
from botocore.auth import SigV4Auth, _host_from_url
from botocore.awsrequest import AWSRequest

# A domain endpoint names its region: search-NAME-ID.eu-west-1.es.amazonaws.com (VPC: vpc-...).
# https://docs.aws.amazon.com/general/latest/gr/opensearch-service.html
_DOMAIN_HOST = re.compile(r"\.([a-z]{2}(?:-[a-z]+)+-\d+)\.es\.amazonaws\.com$")
SIGNING_SERVICE = "es"


def signing_region(url: str, default: str) -> str:
    """The region in an OpenSearch Service endpoint's host name, else ``default`` (--region)."""
    match = _DOMAIN_HOST.search(urlsplit(url).hostname or "")
    return match.group(1) if match else default


@dataclass(frozen=True, slots=True)
class SigV4Signer:
    """Signs each request with botocore's SigV4 signer. ``credentials``: botocore Credentials
    or aiobotocore's refreshable ones (frozen again per request, so a refresh is picked up)."""

    credentials: Any
    region: str
    method: str

    async def headers(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        frozen = self.credentials.get_frozen_credentials()
        if inspect.isawaitable(frozen):
            frozen = await frozen
        request = AWSRequest(
            method=self.method,
            url=url,
            data=body,
            # Host as sent (aiohttp sends the same value); the body's hash signed in a header,
            # as the OpenSearch clients' own signers do.
            headers={
                **headers,
                "Host": _host_from_url(url),
                "X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest(),
            },
        )
        SigV4Auth(frozen, SIGNING_SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())


async def default_signer(url: str, region: str, method: str) -> SigV4Signer | None:
    """A signer when the URL has no user:password and the SDK's chain finds credentials."""
    if urlsplit(url).username is not None:
        return None
    credentials = await get_session().get_credentials()
    if credentials is None:
        return None
    return SigV4Signer(credentials, signing_region(url, region), method)
