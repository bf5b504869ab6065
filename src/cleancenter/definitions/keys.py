"""Ed25519 signing keys for definition bundles.

The private key never leaves the center's data dir (mode 0600); the cleaner pins the
public key, and its fingerprint (sha256 of the raw 32 bytes) is what people compare.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

PRIVATE_NAME = "definitions.key"
PUBLIC_NAME = "definitions.pub"


class KeyProblem(Exception):
    """A key is missing, unreadable or refuses to be overwritten."""


@dataclass(frozen=True)
class PublicKey:
    raw: bytes  # 32 bytes

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(self.raw).hexdigest()

    def text(self) -> str:
        """The form written to ``definitions.pub`` and pinned by the cleaner."""
        return "ed25519:" + base64.b64encode(self.raw).decode("ascii")

    @classmethod
    def parse(cls, text: str) -> PublicKey:
        value = text.strip()
        if not value.startswith("ed25519:"):
            raise KeyProblem("a public key looks like 'ed25519:<base64>'")
        try:
            raw = base64.b64decode(value.removeprefix("ed25519:"), validate=True)
        except ValueError as exc:
            raise KeyProblem(f"public key is not base64: {exc}") from exc
        if len(raw) != 32:
            raise KeyProblem(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
        return cls(raw)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, message)
        except InvalidSignature:
            return False
        return True


def init_keys(folder: Path, *, force: bool = False) -> PublicKey:
    """Make a key pair in ``folder``; refuses to overwrite one unless ``force``."""
    private_path, public_path = folder / PRIVATE_NAME, folder / PUBLIC_NAME
    if private_path.exists() and not force:
        raise KeyProblem(f"{private_path} exists; refusing to replace the signing key "
                        "(cleaners pin its public half)")
    folder.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    tmp = private_path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    os.replace(tmp, private_path)
    public = PublicKey(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                     serialization.PublicFormat.Raw))
    public_path.write_text(public.text() + "\n")
    return public


def load_private(folder: Path) -> Ed25519PrivateKey:
    path = folder / PRIVATE_NAME
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise KeyProblem(f"no signing key at {path}; run `cleancenter keys init`") from exc
    except ValueError as exc:
        raise KeyProblem(f"{path} is not a readable private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyProblem(f"{path} is not an Ed25519 key")
    return key


def load_public(path: Path) -> PublicKey:
    try:
        return PublicKey.parse(path.read_text())
    except FileNotFoundError as exc:
        raise KeyProblem(f"no public key at {path}") from exc


def public_of(key: Ed25519PrivateKey) -> PublicKey:
    return PublicKey(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                   serialization.PublicFormat.Raw))
