"""stunscan: a Scapy-based raw-packet toolkit for STUN."""

__version__ = "0.1.0"
