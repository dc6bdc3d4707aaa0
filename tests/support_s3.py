"""A real S3-compatible server for tests: moto on a free loopback port, IAM auth switched on.

moto accepts any key unless IAM authentication is on, so a wrong secret would pass unnoticed;
with it on, a user with an S3 policy is created and its real key pair handed out.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
from moto import server as moto_server

__all__ = ["S3Store", "running_s3"]


@dataclass(frozen=True)
class S3Store:
    endpoint: str
    access_key: str
    secret_key: str

    def props(self, **over: str) -> dict[str, str]:
        """The MRS job properties that point a job at this store."""
        p = {
            "fs.obs.endpoint": self.endpoint,
            "fs.obs.access.key": self.access_key,
            "fs.obs.secret.key": self.secret_key,
        }
        p.update(over)
        return p

    def client(self):  # type: ignore[no-untyped-def]
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def new_bucket(self, prefix: str = "b") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def objects(self, bucket: str) -> dict[str, bytes]:
        c = self.client()
        keys = [
            o["Key"]
            for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])
        ]
        return {k: c.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


@contextmanager
def running_s3(user_prefix: str = "tests") -> Iterator[S3Store]:
    from moto.core.authorization import enable_iam_authentication

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        user = f"{user_prefix}-{uuid.uuid4().hex[:8]}"
        iam.create_user(UserName=user)
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=user)["AccessKey"]
        with enable_iam_authentication():
            yield S3Store(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        server.stop()
