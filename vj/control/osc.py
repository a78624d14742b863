"""OSC transport: a UDP server on its own thread feeding :class:`vj.control.osc_router.OscRouter`, and feedback of
state changes to a tablet so its faders follow.

The server uses python-osc's ``Dispatcher(strict_timing=False)`` (a bundle with a future time tag would otherwise
sleep the server thread) with one default handler. Every datagram goes through :meth:`OscServer.handle_datagram`:
the sender allowlist, then parsing, then the router. Anything ignored — a sender not allowed, a malformed packet,
an unknown address, a wrong type — is counted and logged at most once per :data:`LOG_INTERVAL_S`.

Default bind: ``127.0.0.1:9000`` (this machine only); ``--osc-host 0.0.0.0`` listens on the LAN.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
from typing import Iterable

from pythonosc import osc_server
from pythonosc.dispatcher import Dispatcher
from pythonosc.udp_client import SimpleUDPClient

from vj.control.osc_router import PREFIX, RAW_BY_DEFAULT, OscRouter
from vj.control.params import ParamRegistry
from vj.control.ratelog import RateLimitedLog
from vj.errors import VJError

DEFAULT_HOST = "127.0.0.1"
"""Default OSC bind address (local only)."""
DEFAULT_PORT = 9000
"""Default OSC UDP port."""
LOG_INTERVAL_S = 5.0
"""At most one "ignored" log line per this many seconds [s]."""

_log = logging.getLogger("vj.control")


def parse_host_port(text: str, what: str = "--osc-feedback") -> tuple[str, int]:
    """``"HOST:PORT"`` → (host, port).

    Raises:
        VJError: not ``HOST:PORT`` with a port in 1..65535.
    """
    host, sep, port = str(text).rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise VJError(f"{what}: expected HOST:PORT (e.g. 192.168.1.20:9001), got {text!r}")
    return host, int(port)


def parse_allowlist(text: str | None) -> tuple | None:
    """``"192.168.1.20,10.0.0.0/24"`` → networks; None/empty → None (everyone allowed).

    Raises:
        VJError: an entry is not an IP address or network.
    """
    if not text:
        return None
    nets = []
    for item in str(text).split(","):
        item = item.strip()
        if not item:
            continue
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise VJError(f"--osc-allow: {item!r} is not an IP address or network") from None
    return tuple(nets) or None


def osc_address(name: str) -> str:
    """OSC address of parameter ``name``: ``"gan.truncation"`` → ``"/vj/gan/truncation"``."""
    return PREFIX + name.replace(".", "/")


class _QuietPythonOsc(logging.Filter):
    """Drop python-osc's own warnings about malformed input (logged on the root logger for every bad packet);
    :class:`OscServer` counts those packets and logs them rate-limited instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not ("pythonosc" in record.pathname and record.levelno <= logging.WARNING)


_quiet = _QuietPythonOsc()


class _Server(osc_server.BlockingOSCUDPServer):
    """python-osc's UDP server with every datagram handed to :meth:`OscServer.handle_datagram`."""

    owner: "OscServer"

    def verify_request(self, request, client_address) -> bool:
        return True  # the owner checks the allowlist and counts malformed packets itself

    def finish_request(self, request, client_address) -> None:
        self.owner.handle_datagram(request[0], client_address)

    def handle_error(self, request, client_address) -> None:
        self.owner.drops.drop("internal error")


class OscServer:
    """vj's OSC input: binds on :meth:`start`, serves on a daemon thread, stops on :meth:`close`.

    Args:
        router: the :class:`OscRouter` that acts on messages.
        host: bind address (default 127.0.0.1).
        port: UDP port (0 = any free port; see :attr:`port` after :meth:`start`).
        allow: sender networks allowed (from :func:`parse_allowlist`); None = everyone who can reach the port.
    """

    def __init__(self, router: OscRouter, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 allow: Iterable | None = None):
        self.router = router
        self.host = host
        self.port = int(port)
        self.allow = tuple(allow) if allow else None
        self.drops = RateLimitedLog(_log, "osc", LOG_INTERVAL_S)
        if _quiet not in logging.getLogger().filters:
            logging.getLogger().addFilter(_quiet)
        self.dispatcher = Dispatcher(strict_timing=False)
        self.dispatcher.set_default_handler(self._on_message, needs_reply_address=True)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _allowed(self, client_address) -> bool:
        if self.allow is None:
            return True
        try:
            ip = ipaddress.ip_address(client_address[0])
        except (ValueError, TypeError, IndexError):
            return False
        return any(ip in net for net in self.allow)

    def handle_datagram(self, data: bytes, client_address=("127.0.0.1", 0)) -> None:
        """Check, parse and route one UDP datagram. Never raises.

        Args:
            data: the datagram (an OSC message or bundle, or garbage).
            client_address: (ip, port) of the sender.
        """
        try:
            if not self._allowed(client_address):
                self.drops.drop(f"sender {client_address[0]} not in --osc-allow")
                return
            if not data or data[:1] not in (b"/", b"#"):
                self.drops.drop("not an OSC packet")
                return
            before = self.router.handled + self.drops.count
            self.dispatcher.call_handlers_for_packet(bytes(data), client_address)
            if self.router.handled + self.drops.count == before:
                self.drops.drop("malformed OSC packet")
        except Exception as exc:  # python-osc's parser can raise more than ParseError on garbage
            self.drops.drop(f"malformed OSC packet ({type(exc).__name__})")

    def _on_message(self, client_address, address, *args) -> None:
        reason = self.router.handle(address, args)
        if reason is not None:
            self.drops.drop(reason)

    def start(self) -> "OscServer":
        """Bind and start serving on a daemon thread.

        Returns:
            self.

        Raises:
            VJError: the address cannot be bound (port in use, no such interface).
        """
        try:
            server = _Server((self.host, self.port), self.dispatcher)
        except OSError as exc:
            raise VJError(f"cannot listen for OSC on {self.host}:{self.port}: {exc.strerror or exc}") from None
        server.owner = self
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="vj-osc", daemon=True)
        self._thread.start()
        _log.info("osc: listening on %s:%d", self.host, self.port)
        return self

    def close(self) -> None:
        """Stop serving and release the port (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None


class OscFeedback:
    """Send state changes to a tablet (``--osc-feedback HOST:PORT``) on the addresses it sends to.

    Values go out as fader positions 0..1 (raw for ``/vj/tempo/bpm``); on/off as 0 or 1; the palette as
    ``/vj/gan/classes`` with the indices; the preset as ``/vj/preset/current <name>``; section events as
    ``/vj/event/build``, ``/vj/event/drop``, ``/vj/event/breakdown`` with the confidence (0..1). Triggers are not
    echoed.

    Args:
        registry: the registry whose changes are sent (register with :meth:`attach`).
        host, port: where to send.
        client: a python-osc client (tests); a ``SimpleUDPClient(host, port)`` by default.
    """

    def __init__(self, registry: ParamRegistry, host: str, port: int, client=None):
        self.registry = registry
        self.target = (host, int(port))
        try:
            self.client = client if client is not None else SimpleUDPClient(host, int(port))
        except (OSError, socket.gaierror) as exc:
            raise VJError(f"--osc-feedback: cannot send to {host}:{port}: {exc}") from None
        self.errors = RateLimitedLog(_log, "osc feedback", LOG_INTERVAL_S)
        self.sent = 0  #: messages sent

    def attach(self) -> "OscFeedback":
        """Listen to the registry (each :meth:`ParamRegistry.apply_pending` that changes something sends)."""
        self.registry.add_listener(self.on_change)
        return self

    def _send(self, address: str, value) -> None:
        try:
            self.client.send_message(address, value)
            self.sent += 1
        except OSError as exc:
            self.errors.drop(f"{address}: {exc}")

    def value_message(self, name: str) -> tuple[str, object] | None:
        """The (address, value) sent for parameter ``name``, or None for triggers and unknown names."""
        if name == "classes":
            return PREFIX + "gan/classes", list(self.registry.classes)
        if name not in self.registry:
            return None
        p = self.registry.param(name)
        v = self.registry.get(name)
        if p.kind == "trigger":
            return None
        if p.kind == "bool":
            return osc_address(name), int(v >= 0.5)
        if name in RAW_BY_DEFAULT:
            return osc_address(name), float(v)
        return osc_address(name), float(p.to_unit(v))

    def on_change(self, changed: dict[str, float]) -> None:
        """Registry listener: send every changed value."""
        for name in changed:
            msg = self.value_message(name)
            if msg is not None and msg[1] != []:
                self._send(*msg)

    def preset(self, name: str) -> None:
        """Send the name of the preset now showing."""
        self._send(PREFIX + "preset/current", str(name))

    def event(self, name: str, confidence: float) -> None:
        """Send a section event: ``/vj/event/<name> <confidence 0..1>`` (name: build, drop, breakdown)."""
        self._send(PREFIX + "event/" + str(name), float(confidence))

    def send_all(self) -> None:
        """Send every value (``/vj/refresh``: a tablet that just connected catches up)."""
        self.on_change({n: 0.0 for n in self.registry.names()} | {"classes": 1.0})
