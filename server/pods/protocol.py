"""The pod link: the frames a pod worker and the server exchange over one WebSocket.

Every frame is a JSON object with an ``op``:

worker -> server
  ``hello``         ``{pod_id, pid}``: first frame; the server answers ``welcome``.
  ``events``        ``{through, events: [[offset, topic, stream, type, time_us, payload], ...]}``:
                    recorded events, in the worker's own log order; ``offset`` is the worker's.
                    The frame starts with the bytes ``{"op":"events"`` (the server queues it
                    undecoded until it can append it).
  ``result``        ``{id, value}`` / ``error`` ``{id, error}``: the answer to a ``call``.
  ``notification``  ``{notification}``: a stop, continue, output, invalidation or end.

server -> worker
  ``welcome``       the link is up.
  ``ack``           ``{through}``: every event up to that worker offset is in the shared log.
  ``call``          ``{id, method, arguments}``: an ``ExecutionControl`` call.
  ``clients``       ``{all, executions}``: which executions a client is attached to now.
  ``shutdown``      end the executions, flush the events, exit.

The worker's events carry idempotency keys made of the pod id and the worker offset, so a batch
resent after a dropped link is written once.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONNECT_PATH",
    "EVENTS_FRAME",
    "HEARTBEAT_SECONDS",
    "MAX_FRAME_BYTES",
    "POD_HEADER",
    "SERVER_CERT_VARIABLE",
    "SPARE_VARIABLE",
    "producer_id",
]

CONNECT_PATH: Final = "/api/v1/pods/connect"
POD_HEADER: Final = "X-Canopy-Pod"
HEARTBEAT_SECONDS: Final = 5.0
"""Ping interval on the link; a side that hears nothing for twice as long drops it."""
MAX_FRAME_BYTES: Final = 16 * 1024 * 1024
"""Largest frame either side accepts: room for a batch holding a maximal tree description."""
EVENTS_FRAME: Final = b'{"op":"events"'
BATCH_BYTES: Final = 256 * 1024
"""A worker stops adding events to a batch past this size (one event may exceed it)."""


SPARE_VARIABLE: Final = "CANOPY_POD_SPARE"
"""``1`` for a spare worker: it starts, imports and opens its log, then waits on stdin for the
JSON object of the ``CANOPY_POD_*`` variables that make it a given user's pod (see
:class:`server.pods.local.LocalPodProvider`)."""


SERVER_CERT_VARIABLE: Final = "CANOPY_SERVER_CERT"
"""The PEM text of a TLS server's certificate, which its workers trust on their ``wss`` link.
The text, not a path: a Kubernetes pod does not share the server's files."""


def producer_id(pod_id: str) -> str:
    """The producer a pod's worker is in the shared log, which numbers its events by the
    worker's own offsets (see :class:`~canopy.bridge.ProducerSequence`)."""
    return f"pod:{pod_id}"
