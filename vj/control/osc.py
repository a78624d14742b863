"""OSC transport: a UDP server on its own thread feeding :class:`vj.control.osc_router.OscRouter`, and feedback of
state changes to a tablet so its faders follow.

Every datagram goes through :meth:`OscServer.handle_datagram`: the sender allowlist, bundle framing (our own, with
a depth and message cap), a cheap check of the address and type tags, python-osc's message parser, then the router
(whose table is the dispatcher: python-osc's ``Dispatcher`` would compile every incoming pattern into a regex and
print a ``FutureWarning`` for odd ones). Time tags are ignored: a bundle is acted on when it arrives.

Work is bounded (:class:`vj.control.budget.InputBudget`): at most :data:`MAX_PACKET` bytes and
:data:`MAX_MESSAGES_PER_PACKET` messages per datagram, at most :data:`PACKET_BUDGET_S` of handling per datagram,
and :data:`MESSAGES_PER_S` messages and :data:`CPU_PER_S` of CPU per second; past that, messages are dropped.
Anything ignored — a sender not allowed, a malformed packet, an unknown address, a wrong type, over budget — is
counted and logged at most once per :data:`LOG_INTERVAL_S`. The kernel's socket buffer is the only queue.

Default bind: ``127.0.0.1:9000`` (this machine only); ``--osc-host 0.0.0.0`` listens on the LAN (and warns, unless
``--osc-allow`` limits the senders).
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from typing import Iterable

from pythonosc.osc_message import OscMessage
from pythonosc.udp_client import SimpleUDPClient

from vj.control.budget import InputBudget
from vj.control.osc_router import MAX_ADDRESS, MAX_ARGS, PREFIX, RAW_BY_DEFAULT, OscRouter
from vj.control.params import ParamRegistry
from vj.control.ratelog import RateLimitedLog
from vj.errors import VJError

DEFAULT_HOST = "127.0.0.1"
"""Default OSC bind address (local only)."""
DEFAULT_PORT = 9000
"""Default OSC UDP port."""
LOG_INTERVAL_S = 5.0
"""At most one "ignored" log line per this many seconds [s]."""
MAX_PACKET = 8192
"""Bytes read per datagram (a longer one is cut there and fails to parse) [bytes]."""
MAX_BUNDLE_DEPTH = 4
"""Bundles nested deeper are dropped whole."""
MAX_MESSAGES_PER_PACKET = 64
"""Messages past this many in one datagram are dropped."""
PACKET_BUDGET_S = 0.004
"""Messages of one datagram still unhandled after this much CPU time (``time.thread_time``) are dropped [s]
(a quarter of a 60 Hz frame; the first message is always handled, its own cost being bounded by the caps)."""
MESSAGES_PER_S = 2000.0
"""Sustained messages per second (a tablet's fader sweep sends a few hundred)."""
MESSAGE_BURST = 1000.0
"""Messages that may arrive at once above the sustained rate."""
CPU_PER_S = 0.1
"""CPU time the OSC thread may spend handling per second [s/s] (a tenth of one core)."""
DRAIN_BATCH = 256
"""Datagrams handled per wake-up of the receive thread at most."""
BUSY_PAUSE_S = 0.005
"""Pause after a wake-up that found more than one datagram waiting [s] (they queue in the kernel meanwhile)."""
RECV_BUFFER = 1 << 20
"""Socket receive buffer asked for [bytes] (the kernel caps it at net.core.rmem_max); the only queue."""
_BUNDLE = b"#bundle\x00"

_log = logging.getLogger("vj.control")


class PacketError(ValueError):
    """A datagram that is not a well-formed OSC packet (the message says why)."""


def split_packet(data: bytes, max_depth: int = MAX_BUNDLE_DEPTH) -> list[bytes]:
    """The OSC messages of one datagram, in order, with bundles unpacked (OSC 1.0: ``#bundle``, an 8-byte time
    tag, then elements of an int32 size and that many bytes).

    Args:
        data: the datagram.
        max_depth: deepest bundle nesting accepted.

    Returns:
        the message datagrams (each starts with ``/``), not parsed further.

    Raises:
        PacketError: not a message or bundle, an element size that is not a positive multiple of 4 or runs past
            its bundle, or bundles nested deeper than ``max_depth``.
    """
    out: list[bytes] = []
    stack = [(0, len(data), 0)]
    while stack:
        start, end, depth = stack.pop()
        if data.startswith(_BUNDLE, start, end):
            if depth >= max_depth:
                raise PacketError(f"bundles nested deeper than {max_depth}")
            i, elements = start + 16, []
            if i > end:
                raise PacketError("bundle without a time tag")
            while i < end:
                size = int.from_bytes(data[i : i + 4], "big", signed=True) if i + 4 <= end else -1
                i += 4
                if size <= 0 or size % 4 or i + size > end:
                    raise PacketError("bundle element size does not fit the bundle")
                elements.append((i, i + size, depth + 1))
                i += size
            stack.extend(reversed(elements))
        elif data.startswith(b"/", start, end):
            out.append(bytes(data[start:end]))
        else:
            raise PacketError("not an OSC message or bundle")
    return out


def _precheck(dgram: bytes) -> str | None:
    """Why a message datagram is refused before parsing (address not ours or too long, too many type tags)."""
    end = dgram.find(b"\x00", 0, MAX_ADDRESS + 1)
    if end < 0:
        return f"address longer than {MAX_ADDRESS} characters"
    if not dgram.startswith(PREFIX.encode()):
        return f"unknown address {dgram[:min(end, 64)].decode('latin-1')!r}"
    tags = (end + 4) & ~3
    if dgram.startswith(b",", tags) and dgram.find(b"\x00", tags, tags + MAX_ARGS + 2) < 0:
        return f"more than {MAX_ARGS} arguments"
    return None


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


def _is_public(host: str, port: int) -> bool:
    """True if binding ``host`` makes the port reachable from other machines (not a loopback address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError:
        return True
    return any(not ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


class OscServer:
    """vj's OSC input: binds on :meth:`start`, serves on a daemon thread, stops on :meth:`close`.

    Args:
        router: the :class:`OscRouter` that acts on messages.
        host: bind address (default 127.0.0.1).
        port: UDP port (0 = any free port; see :attr:`port` after :meth:`start`).
        allow: sender networks allowed (from :func:`parse_allowlist`); None = everyone who can reach the port.
        budget: the :class:`InputBudget` (default: :data:`MESSAGES_PER_S`, :data:`MESSAGE_BURST`,
            :data:`CPU_PER_S`).
    """

    def __init__(self, router: OscRouter, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 allow: Iterable | None = None, budget: InputBudget | None = None):
        self.router = router
        self.host = host
        self.port = int(port)
        self.allow = tuple(allow) if allow else None
        self.drops = RateLimitedLog(_log, "osc", LOG_INTERVAL_S)
        self.budget = budget or InputBudget(MESSAGES_PER_S, MESSAGE_BURST, CPU_PER_S)
        self.packets = 0  #: datagrams received
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
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
        """Check, parse and route one UDP datagram, within the budgets. Never raises.

        Args:
            data: the datagram (an OSC message or bundle, or garbage).
            client_address: (ip, port) of the sender.
        """
        t0 = time.thread_time()
        self.packets += 1
        try:
            self._handle(bytes(data[:MAX_PACKET]), client_address, t0)
        except Exception as exc:  # noqa: BLE001 — input must never take the surface down
            self.drops.drop(f"internal error {type(exc).__name__}")
        finally:
            self.budget.spend(time.thread_time() - t0)

    def _handle(self, data: bytes, client_address, t0: float) -> None:
        if not self._allowed(client_address):
            self.drops.drop(f"sender {client_address[0]} not in --osc-allow")
            return
        try:
            messages = split_packet(data)
        except PacketError as exc:
            self.drops.drop(f"malformed OSC packet ({exc})")
            return
        for k, dgram in enumerate(messages):
            if k >= MAX_MESSAGES_PER_PACKET or (k and time.thread_time() - t0 > PACKET_BUDGET_S):
                why = (f"over {MAX_MESSAGES_PER_PACKET} messages in one packet" if k >= MAX_MESSAGES_PER_PACKET
                       else f"packet over its {PACKET_BUDGET_S * 1000:.0f} ms budget")
                for _ in messages[k:]:
                    self.drops.drop(why)
                return
            reason = self.budget.take() or _precheck(dgram)
            if reason is None:
                try:
                    msg = OscMessage(dgram)
                except Exception as exc:  # noqa: BLE001 — python-osc raises more than ParseError on garbage
                    reason = f"malformed OSC message ({type(exc).__name__})"
                else:
                    reason = self.router.handle(msg.address, tuple(msg.params))
            if reason is not None:
                self.drops.drop(reason)

    def handle_message(self, address, args: tuple = ()) -> str | None:
        """Route one decoded message (no budget: that is charged per datagram); an ignored one is counted.

        Returns:
            None if acted on, else the reason it was ignored.
        """
        reason = self.router.handle(address, tuple(args))
        if reason is not None:
            self.drops.drop(reason)
        return reason

    def _serve(self) -> None:
        """Receive loop: block for a datagram, then drain what else is waiting (up to :data:`DRAIN_BATCH`) without
        blocking; after a busy batch, sleep :data:`BUSY_PAUSE_S` so a flood wakes this thread (and takes the GIL
        from the display loop) at most a few hundred times a second instead of once per packet."""
        sock = self._sock
        while not self._stop.is_set():
            try:
                data, client = sock.recvfrom(MAX_PACKET)
            except (socket.timeout, BlockingIOError, InterruptedError):
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            self.handle_datagram(data, client)
            n = 1
            while n < DRAIN_BATCH:
                try:
                    data, client = sock.recvfrom(MAX_PACKET, socket.MSG_DONTWAIT)
                except OSError:  # BlockingIOError: nothing more waiting
                    break
                self.handle_datagram(data, client)
                n += 1
            if n > 1:
                time.sleep(BUSY_PAUSE_S)

    def start(self) -> "OscServer":
        """Bind and start serving on a daemon thread. Logs one warning when the port is reachable from other
        machines and no allowlist limits the senders.

        Returns:
            self.

        Raises:
            VJError: the address cannot be bound (port in use, no such interface).
        """
        try:
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0][0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                sock.bind((self.host, self.port))
            except OSError:
                sock.close()
                raise
        except OSError as exc:
            raise VJError(f"cannot listen for OSC on {self.host}:{self.port}: {exc.strerror or exc}") from None
        sock.settimeout(0.1)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECV_BUFFER)
        except OSError:
            pass
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="vj-osc", daemon=True)
        self._thread.start()
        _log.info("osc: listening on %s:%d", self.host, self.port)
        if self.allow is None and _is_public(self.host, self.port):
            _log.warning("osc: listening on %s:%d without --osc-allow: anyone on that network can control the "
                         "show (e.g. --osc-allow 192.168.1.20 limits it to one tablet)", self.host, self.port)
        return self

    def close(self) -> None:
        """Stop serving and release the port (idempotent); logs how many messages were handled and ignored."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
            _log.info("osc: %d packets, %d messages handled, %d ignored (%d over budget)", self.packets,
                      self.router.handled, self.drops.count, self.budget.over_rate + self.budget.over_cpu)


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
