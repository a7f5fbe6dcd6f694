"""The raw mail as SES stored it in S3."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from rootmail.adapters.aws import describe, error_code, is_transient
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

    def put(self, key: str, raw: bytes) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=key, Body=raw)
