"""Who may call: bearer tokens, checked in front of both APIs (`admit`).

An `Authenticator` checks a token: static tokens (`StaticTokens`) or the JupyterHub this
server is a service of (`HubTokens`). A call that passes runs as its `Caller`
(`running_as`, `current_caller`), which the services put into the engine's client id. What
this means for users and deployments is in ``docs/serving.md``.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import ipaddress
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ...errors import AuthenticationError, ServerUnavailableError
from ..config import ServerConfig
from .hubcalls import HubCalls, no_answer

log = logging.getLogger(__name__)

AUTH_KEY = "authorization"
TOKEN_ENV = "MEF3LAB_TOKEN"
#: Methods anyone may call.
OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: the user a token belongs to and the hub groups they are in."""

    user: str
    groups: frozenset[str] = frozenset()


class ClientId(str):
    """The engine's client id (a plain string key), carrying the `Caller` it was made for.

    Its `identity` is whom quotas count it against (`identity_of`): a client id is the
    caller's to choose, an identity is not.
    """

    caller: Caller | None
    identity: str

    def __new__(
        cls, value: str, caller: Caller | None = None, identity: str | None = None
    ) -> ClientId:
        """The client id `value`, made for `caller` (None: auth is off), of `identity`."""
        self = super().__new__(cls, value)
        self.caller = caller
        self.identity = value if identity is None else identity
        return self

    @property
    def groups(self) -> frozenset[str] | None:
        """The caller's hub groups (None: auth is off, the caller is nobody in particular)."""
        return None if self.caller is None else self.caller.groups


class Authenticator(Protocol):
    """What checks tokens, on the gRPC side and the HTTP side alike."""

    def authenticate(self, token: str) -> Caller | None:
        """The caller `token` belongs to.

        Parameters
        ----------
        token : str
            The bearer token a call brought.

        Returns
        -------
        Caller or None
            Who the token belongs to; None when it is not valid.

        Raises
        ------
        Mef3LabError
            The authenticator cannot tell (the hub is down).
        """

    def known(self, token: str) -> tuple[bool, Caller | None]:
        """What `authenticate` would say, if it can be told at once (without asking anyone).

        Parameters
        ----------
        token : str
            The bearer token a call brought.

        Returns
        -------
        tuple of (bool, Caller or None)
            (True, the answer) when known; (False, None) when `authenticate` must ask.
        """


_CALLER: contextvars.ContextVar[Caller | None] = contextvars.ContextVar(
    "mef3lab_caller", default=None
)


def current_caller() -> Caller | None:
    """The authenticated caller of the RPC this thread is handling (None: auth is off)."""
    return _CALLER.get()


class StaticTokens:
    """Tokens fixed at start, each mapped to its user; compared in constant time.

    Parameters
    ----------
    tokens : Mapping of str to str
        Token -> user name.

    Raises
    ------
    ValueError
        A token is empty.
    """

    def __init__(self, tokens: Mapping[str, str]) -> None:
        if any(not t for t in tokens):
            raise ValueError("an empty token would let anyone in")
        self._tokens = [(t.encode(), user) for t, user in tokens.items()]

    @classmethod
    def load(cls, token_file: str = "", token: str = "") -> StaticTokens:
        """The tokens of a token file and/or one more token.

        Parameters
        ----------
        token_file : str, default ""
            A file of lines ``TOKEN`` or ``USER TOKEN`` (``#`` starts a comment); a token
            without a user is ``token-N`` (the N-th token of the file).
        token : str, default ""
            One more token (``MEF3LAB_TOKEN``), of the user ``token``.

        Returns
        -------
        StaticTokens
            The tokens.

        Raises
        ------
        ValueError
            A line has more than two words, or the file holds no token.
        OSError
            The file cannot be read.
        """
        tokens: dict[str, str] = {}
        if token_file:
            with open(token_file) as f:
                for n, line in enumerate(f, 1):
                    parts = line.split("#", 1)[0].split()
                    if len(parts) > 2:
                        raise ValueError(f"{token_file}:{n}: write TOKEN or USER TOKEN")
                    if parts:
                        tokens[parts[-1]] = (
                            parts[0] if len(parts) == 2 else f"token-{len(tokens) + 1}"
                        )
            if not tokens:
                raise ValueError(f"{token_file} holds no token")
        if token:
            tokens[token] = "token"
        return cls(tokens)

    def authenticate(self, token: str) -> Caller | None:
        """The caller `token` belongs to, or None (see `Authenticator.authenticate`)."""
        given, found = token.encode(), None
        for known, user in self._tokens:  # every token compared, in constant time each
            if hmac.compare_digest(given, known) and found is None:
                found = Caller(user)
        return found

    def known(self, token: str) -> tuple[bool, Caller | None]:
        """Always known: `authenticate` asks nobody."""
        return True, self.authenticate(token)


class HubTokens:
    """Tokens the JupyterHub issued, checked with the hub (this server runs as a hub service).

    `jupyterhub.services.auth.HubAuth` asks the hub who owns a token (``/hub/api/user``), and
    the token must grant access to this service (``access:services!service=NAME``,
    HubAuth's `access_scopes`). The answers are kept here (`HubCalls`): a user's for
    `cache_s` seconds, a refusal for a shorter while; a few tokens are asked about at once,
    and a hub that does not answer in `timeout_s` gives `ServerUnavailableError`.

    Parameters
    ----------
    cache_s : int, default 60
        Seconds an answer of the hub is reused.
    timeout_s : float, default 5.0
        Seconds a check waits for the hub.
    **hub_settings
        Passed on to `HubAuth` (``api_token``, ``api_url``).

    Raises
    ------
    ValueError
        There is no hub API token (the server does not run as a hub service).
    ImportError
        jupyterhub is not installed (the ``hub`` extra).
    """

    def __init__(self, cache_s: int = 60, timeout_s: float = 5.0, **hub_settings) -> None:
        from jupyterhub.services.auth import HubAuth

        self.hub = HubAuth(cache_max_age=cache_s, **hub_settings)
        self.timeout_s = timeout_s
        self._calls = HubCalls(self._ask, cache_s, timeout_s)
        if not self.hub.api_token:
            raise ValueError(
                "--hub-auth needs JUPYTERHUB_API_TOKEN and JUPYTERHUB_API_URL (run mef3lab serve "
                "as a JupyterHub service)"
            )
        # Every question on one loop: HubAuth keeps an HTTP client per loop, which a loop
        # per question would leave open (descriptors) each time.
        self._loop = asyncio.new_event_loop()
        threading.Thread(
            target=self._loop.run_forever, name="mef3lab-hub-loop", daemon=True
        ).start()

    def authenticate(self, token: str) -> Caller | None:
        """The hub user `token` belongs to, with their groups, or None.

        None also for a token of a service rather than a user, or one without the scope to
        use this service.

        Raises
        ------
        ServerUnavailableError
            The hub cannot be asked, does not answer in time, or answered nonsense: nobody
            gets in.
        """
        return self._calls(token)

    def known(self, token: str) -> tuple[bool, Caller | None]:
        """The hub's answer for `token` if it is cached (see `Authenticator.known`)."""
        return self._calls.known(token)

    def _ask(self, token: str) -> Caller | None:
        """Ask the hub (`authenticate` without the cache)."""
        try:
            # On the questions' loop, not HubAuth's own worker, and never longer than the
            # check may take: a hung hub leaves no request behind.
            model = asyncio.run_coroutine_threadsafe(
                asyncio.wait_for(
                    self.hub.user_for_token(token, use_cache=False, sync=False), self.timeout_s
                ),
                self._loop,
            ).result()
        except TimeoutError:  # the same as the caller's own wait, whichever ends first
            raise no_answer(self.timeout_s) from None
        except Exception as exc:  # the hub is down or answered nonsense: nobody gets in
            log.warning("could not check a token with the hub at %s: %s", self.hub.api_url, exc)
            raise ServerUnavailableError(
                f"this server could not check the token with JupyterHub ({exc}); "
                "try again when the hub is up"
            ) from None
        if not model or model.get("kind", "user") != "user":
            return None
        if self.hub.access_scopes and not self.hub.check_scopes(self.hub.access_scopes, model):
            log.info(
                "hub user %s has no %s scope: refused",
                model.get("name"),
                sorted(self.hub.access_scopes),
            )
            return None
        return Caller(model["name"], frozenset(model.get("groups") or ()))


def authenticator_for(
    config: ServerConfig, environ: Mapping[str, str] | None = None
) -> Authenticator | None:
    """The authenticator `config` asks for.

    Parameters
    ----------
    config : ServerConfig
        The settings: `hub_auth`, `token_file`, `allow_group`.
    environ : Mapping of str to str, optional
        The environment (default: ``os.environ``): ``MEF3LAB_TOKEN``, and the hub's
        ``JUPYTERHUB_API_TOKEN`` and ``JUPYTERHUB_API_URL``.

    Returns
    -------
    Authenticator or None
        `HubTokens`, `StaticTokens`, or None for no authentication.

    Raises
    ------
    ValueError
        Hub authentication beside static tokens, `allow_group` without it, or a token file
        or hub setting that does not work.
    """
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "")
    if config.hub_auth:
        if config.token_file or token:
            raise ValueError(
                f"--hub-auth and static tokens (--token-file, {TOKEN_ENV}) exclude each other"
            )
        hub = {"api_token": env.get("JUPYTERHUB_API_TOKEN", "")}
        if env.get("JUPYTERHUB_API_URL"):
            hub["api_url"] = env["JUPYTERHUB_API_URL"]
        return HubTokens(**hub)
    if config.allow_group:
        raise ValueError("--allow-group limits roots to hub groups: it needs --hub-auth")
    if config.token_file or token:
        return StaticTokens.load(config.token_file, token)
    return None


def check_exposure(config: ServerConfig, authenticated: bool) -> None:
    """Refuse to serve beyond this machine without authentication, unless told to.

    Parameters
    ----------
    config : ServerConfig
        The settings: `host` and `insecure_public`.
    authenticated : bool
        Whether the server checks tokens.

    Raises
    ------
    ValueError
        `host` is not a loopback address, nothing checks tokens and `insecure_public` is
        not set.
    """
    if authenticated or config.insecure_public or _is_loopback(config.host):
        return
    raise ValueError(
        f"refusing to listen on {config.host} without authentication: anyone who can reach it "
        f"could read every recording. Give --token-file, {TOKEN_ENV} or --hub-auth (or "
        "--insecure-public to accept that)"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def admit(authenticator: Authenticator, token: str) -> Caller:
    """The caller `token` belongs to, or an error saying why the call may not go on.

    Parameters
    ----------
    authenticator : Authenticator
        What checks the token.
    token : str
        The call's bearer token ("" without one).

    Returns
    -------
    Caller
        Who calls.

    Raises
    ------
    mef3lab.errors.AuthenticationError
        No token, or one that is not accepted (UNAUTHENTICATED).
    mef3lab.errors.Mef3LabError
        The check itself failed (the hub is down): not a wrong token.
    """
    return _accepted(token, authenticator.authenticate(token) if token else None)


def admit_known(authenticator: Authenticator, token: str) -> Caller | None:
    """As `admit` when the answer is known at once (`Authenticator.known`); else None.

    Raises
    ------
    mef3lab.errors.AuthenticationError
        No token, or one known to be refused.
    """
    known, caller = authenticator.known(token) if token else (True, None)
    return _accepted(token, caller) if known else None


def _accepted(token: str, caller: Caller | None) -> Caller:
    """`caller`, or the refusal of a call without one."""
    if caller is None:
        raise AuthenticationError(
            f"{'the token was not accepted' if token else 'this server needs a token'}: send "
            f"'authorization: Bearer <token>' (mef3lab's client reads {TOKEN_ENV}, "
            "MEF3LAB_TOKEN_FILE or, in a JupyterHub kernel, JUPYTERHUB_API_TOKEN)"
        )
    return caller


def running_as(caller: Caller) -> contextvars.Context:
    """A copy of the current context in which `current_caller` is `caller`."""
    ctx = contextvars.copy_context()
    ctx.run(_CALLER.set, caller)
    return ctx


def identity_of(peer: str, caller: Caller | None) -> str:
    """Whom a call's quotas count against: its user, else the host (or Unix socket) it came from.

    Parameters
    ----------
    peer : str
        gRPC's peer address (``ipv4:1.2.3.4:5678``, ``ipv6:[::1]:5678``, ``unix:...``).
    caller : Caller or None
        The authenticated caller (None: authentication is off).

    Returns
    -------
    str
        ``user:NAME``, ``ipv4:HOST``, ``ipv6:[HOST]`` or ``unix``.
    """
    if caller is not None:
        return f"user:{caller.user}"
    kind, _, address = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return f"{kind}:{address.rpartition(':')[0]}"
    return kind or peer


def bearer_token(metadata) -> str:
    """The token of an ``authorization: Bearer <token>`` metadata entry ("" without one)."""
    for key, value in metadata or ():
        if key == AUTH_KEY:
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""
