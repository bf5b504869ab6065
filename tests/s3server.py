"""A real S3-compatible server on loopback for the blob-store tests: s3rver (npm), which
keeps objects in a folder and checks access keys. quickstart installs it in
``.tools/s3rver``; ``CLEANCENTER_S3RVER`` names another copy."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import REPO

ACCESS_KEY = SECRET_KEY = "S3RVER"  # s3rver's built-in account
REGION = "us-east-1"


def s3rver_path() -> Path:
    return Path(os.environ.get("CLEANCENTER_S3RVER",
                               REPO / ".tools" / "s3rver" / "node_modules" / ".bin" / "s3rver"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str
    folder: Path

    def env(self) -> dict[str, str]:
        """What a center process needs to reach it (credentials the AWS way)."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "CLEANCENTER_S3_ENDPOINT_URL": self.endpoint}

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(s3={"addressing_style": "path"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def new_bucket(self) -> str:
        name = f"cc-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))


@contextlib.contextmanager
def running_s3rver(folder: Path) -> Iterator[S3Server]:
    binary = s3rver_path()
    if not binary.exists():
        raise FileNotFoundError(f"s3rver not found at {binary} (./quickstart test installs it)")
    port = free_port()
    folder.mkdir(parents=True, exist_ok=True)
    log = (folder.parent / "s3rver.log").open("wb")
    proc = subprocess.Popen([str(binary), "-d", str(folder), "-a", "127.0.0.1", "-p", str(port),
                             "--no-vhost-buckets", "-s"],
                            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    log.close()
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                text = (folder.parent / "s3rver.log").read_text(errors="replace")
                raise RuntimeError(f"s3rver did not start on 127.0.0.1:{port}: {text[-2000:]}")
            time.sleep(0.1)
        yield S3Server(f"http://127.0.0.1:{port}", folder)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
