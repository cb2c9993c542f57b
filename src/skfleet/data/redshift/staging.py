"""The S3 staging area the bulk paths go through, and how Redshift is authorised to use it.

Each run works under a prefix of its own below ``staging=``: ``skfleet-unload-<id>/`` for a source
(the files of one UNLOAD), ``skfleet-load-<digest of target and run>/`` for a sink (one Parquet
object per written partition). Both are removed when the run ends unless ``keep_staging=true``.

The authorization clause is ``IAM_ROLE '<arn>'`` (or ``IAM_ROLE default``) when ``iam_role=`` is
given; otherwise the credentials of the standard AWS chain (environment, profile, instance role)
are handed to Redshift as ``CREDENTIALS 'aws_access_key_id=...;aws_secret_access_key=...'``. That
clause holds a secret: it is only ever sent to the server, never put in a message or a log.

>>> authorization(None, None, _Creds("AKIA", "s/ec'ret", None))
"CREDENTIALS 'aws_access_key_id=AKIA;aws_secret_access_key=s/ec\\\\'ret'"
>>> authorization("default", None)
'IAM_ROLE default'
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

from skfleet.data.files.store import FileStore
from skfleet.errors import ConnectionFailedError, SkfleetError, UsageError


class _Creds(NamedTuple):
    access_key: str
    secret_key: str
    token: str | None


def literal(text: str) -> str:
    """A Redshift string literal (a quote and a backslash are escaped with a backslash)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def authorization(iam_role: str | None, display: str | None, creds: _Creds | None = None) -> str:
    """The ``IAM_ROLE`` / ``CREDENTIALS`` clause of an UNLOAD or COPY."""
    if iam_role == "default":
        return "IAM_ROLE default"
    if iam_role:
        return f"IAM_ROLE {literal(iam_role)}"
    if creds is None:
        creds = _chain_credentials(display)
    pairs = f"aws_access_key_id={creds.access_key};aws_secret_access_key={creds.secret_key}"
    if creds.token:
        pairs += f";token={creds.token}"
    return f"CREDENTIALS {literal(pairs)}"


def _chain_credentials(display: str | None) -> _Creds:
    import botocore.session

    found = botocore.session.get_session().get_credentials()
    if found is None:
        raise UsageError(
            f"{display} gives no iam_role= and no AWS credentials were found in the standard "
            "chain for Redshift to reach the staging bucket: add iam_role=arn:aws:iam::...:role/..."
        )
    frozen = found.get_frozen_credentials()
    return _Creds(frozen.access_key, frozen.secret_key, frozen.token)


class Staging:
    """A run's prefix under ``staging=`` (picklable; the S3 client is made lazily)."""

    def __init__(self, root: str, name: str, region: str | None = None):
        options = {"client_kwargs": {"region_name": region}} if region else None
        self.store, base = FileStore.from_url(root, options)
        self.path = FileStore.join(base, name)

    @property
    def url(self) -> str:
        """``s3://bucket/prefix/run-name`` (no trailing slash)."""
        return self.store.url(self.path)

    def key(self, name: str) -> str:
        return FileStore.join(self.path, name)

    def check_writable(self) -> None:
        """Put and delete a small marker: an unreachable bucket or refused credentials fail here,
        before anything is created in Redshift."""
        marker = self.key("_skfleet_probe")
        try:
            self.store.check_bucket(self.path)
            self.store.put(marker, b"")
            self.store.remove([marker])
        except SkfleetError as exc:
            raise type(exc)(f"staging {self.url}: {exc}") from None
        except OSError as exc:
            raise ConnectionFailedError(f"staging {self.url} is not writable: {exc}") from None

    def put(self, name: str, data: bytes) -> str:
        self.store.put(self.key(name), data)
        return self.store.url(self.key(name))

    def cat(self, name: str) -> bytes | None:
        return self.store.cat(self.key(name))

    def remove(self) -> None:
        """Delete the run's prefix (best effort: staging is scratch space)."""
        with contextlib.suppress(Exception):
            self.store.remove_tree(self.path)
