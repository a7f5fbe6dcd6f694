"""The raw mail as SES stored it in S3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code, is_transient
from rootmail.domain.moments import stamp
from rootmail.errors import MailNotFound, MailStoreUnavailable


class MailStore:
    def __init__(self, s3: Any, bucket: str) -> None:
        self._s3 = s3
        self.bucket = bucket

    def get(self, key: str) -> bytes:
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if error_code(exc) in {"NoSuchKey", "404", "NotFound"}:
                raise MailNotFound(f"s3://{self.bucket}/{key} does not exist") from None
            if is_transient(exc):
                raise MailStoreUnavailable(f"s3://{self.bucket}/{key}: {describe(exc)}") from None
            raise MailNotFound(f"s3://{self.bucket}/{key} cannot be read: {describe(exc)}") from None
        except BotoCoreError as exc:
            raise MailStoreUnavailable(f"s3://{self.bucket}/{key}: {describe(exc)}") from None

    def list(self, prefix: str = "incoming/") -> Iterator[tuple[str, str]]:
        """Every stored mail: (key, when S3 stored it, as an ISO timestamp in UTC)."""
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield item["Key"], stamp(item["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise MailStoreUnavailable(f"s3://{self.bucket}/{prefix}: {describe(exc)}") from None
