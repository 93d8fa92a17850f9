"""The incident pipeline. So far its first stage: evidence in (error reports kept and
aggregated behind :class:`EvidenceStore`; Sentry's formats, OTLP logs and NDJSON log lines
read into them)."""

from .evidence import (
    ErrorRate,
    Evidence,
    EvidenceStore,
    FirstSeen,
    Frame,
    Frequency,
    InvalidEvidence,
    Scope,
    StoredEvidence,
)
from .sqlstore import evidence_store

__all__ = [
    "ErrorRate",
    "Evidence",
    "EvidenceStore",
    "FirstSeen",
    "Frame",
    "Frequency",
    "InvalidEvidence",
    "Scope",
    "StoredEvidence",
    "evidence_store",
]
