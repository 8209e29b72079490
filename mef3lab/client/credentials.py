"""A client's credentials for a shared mef3lab server: its token and the CA it trusts.

One place that every client-side piece calls (`Mef3Client`, `open_recording`, the Jupyter
kernel server), so a hub user needs no configuration at all:

- the token: ``MEF3LAB_TOKEN``, else the first token in ``MEF3LAB_TOKEN_FILE``, else,
  inside a JupyterHub kernel, the kernel's own ``JUPYTERHUB_API_TOKEN`` (a server started
  with ``--hub-auth`` checks it with the hub);
- TLS: ``MEF3LAB_TLS_CA`` names a PEM file of the CA the server's certificate is signed by.

The lab's old clients send a token with one line, `bearer` as a channel interceptor::

    client.stub = type(client.stub)(
        grpc.intercept_channel(client.channel, mef3lab.client.credentials.bearer())
    )
"""

from __future__ import annotations

import collections
import os
from collections.abc import Mapping, Sequence

import grpc

TOKEN_ENV = "MEF3LAB_TOKEN"
TOKEN_FILE_ENV = "MEF3LAB_TOKEN_FILE"
HUB_TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
TLS_CA_ENV = "MEF3LAB_TLS_CA"


def token_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """The token this process sends (see the module docstring for the order).

    Parameters
    ----------
    environ : mapping, optional
        The environment to read; default `os.environ`.

    Returns
    -------
    str or None
        The token, or None when none is set.

    Raises
    ------
    ValueError
        When ``MEF3LAB_TOKEN_FILE`` names a file that holds no token.
    OSError
        When that file cannot be read.
    """
    env = os.environ if environ is None else environ
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV].strip()
    if env.get(TOKEN_FILE_ENV):
        path = env[TOKEN_FILE_ENV]
        with open(path) as f:
            for line in f:
                fields = line.split("#", 1)[0].split()
                if fields:
                    return fields[-1]  # "TOKEN" or the server file's "USER TOKEN"
        raise ValueError(f"{TOKEN_FILE_ENV}={path} holds no token")
    return env.get(HUB_TOKEN_ENV) or None


def tls_ca_from_env(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The PEM bytes of the CA named by ``MEF3LAB_TLS_CA``.

    Parameters
    ----------
    environ : mapping, optional
        The environment to read; default `os.environ`.

    Returns
    -------
    bytes or None
        The certificate(s), or None: connect without TLS.

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    env = os.environ if environ is None else environ
    path = env.get(TLS_CA_ENV)
    if not path:
        return None
    with open(path, "rb") as f:
        return f.read()


class _Details(
    collections.namedtuple(
        "_Details", "method timeout metadata credentials wait_for_ready compression"
    ),
    grpc.ClientCallDetails,
):
    pass


class BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call of a channel.

    Parameters
    ----------
    token : str
        The token to send.
    """

    def __init__(self, token: str) -> None:
        self._entry = ("authorization", f"Bearer {token}")

    def _with_token(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = [m for m in (details.metadata or ()) if m[0] != "authorization"] + [self._entry]
        return _Details(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def intercept_unary_unary(self, continuation, details, request):
        """A unary call, with the token."""
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        """A call answered by a stream, with the token."""
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        """A call sent as a stream, with the token."""
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        """A streaming call both ways, with the token."""
        return continuation(self._with_token(details), requests)


def bearer(token: str | None = None) -> BearerToken:
    """A channel interceptor sending a token with every call.

    Parameters
    ----------
    token : str, optional
        The token; default: `token_from_env`.

    Returns
    -------
    BearerToken
        For `grpc.intercept_channel`.

    Raises
    ------
    ValueError
        When no token is given or set.
    """
    token = token or token_from_env()
    if not token:
        raise ValueError(f"no token: set {TOKEN_ENV} or {TOKEN_FILE_ENV}, or pass one")
    return BearerToken(token)


def channel_for(
    address: str, options: Sequence[tuple] = (), token: str | None = None, ca: bytes | None = None
) -> grpc.Channel:
    """A channel to `address` with this process's credentials.

    TLS when a CA is known, the token on every call when one is set; explicit arguments win
    over the environment.

    Parameters
    ----------
    address : str
        "host:port" or "unix:/path" of the server.
    options : sequence of tuple, optional
        gRPC channel options.
    token : str, optional
        The token; default: `token_from_env`.
    ca : bytes, optional
        PEM bytes of the CA to trust; default: `tls_ca_from_env`.

    Returns
    -------
    grpc.Channel
        The channel (not connected yet).
    """
    ca = ca if ca is not None else tls_ca_from_env()
    channel = (
        grpc.secure_channel(
            address, grpc.ssl_channel_credentials(root_certificates=ca), options=list(options)
        )
        if ca
        else grpc.insecure_channel(address, options=list(options))
    )
    token = token or token_from_env()
    return grpc.intercept_channel(channel, BearerToken(token)) if token else channel
