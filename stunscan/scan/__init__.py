"""Stateless scanning (``stunscan scan``): targets and order, keyed IDs, sender, sniffer.

Modules, one job each: ``targets`` (parsing, blocklist, the numbered space), ``order``
(the cyclic-group walk, shards), ``txid`` (keyed transaction IDs), ``frames`` (the probe
and its raw frames), ``route`` (interface, source, next hop), ``bpf`` (the kernel filter),
``sender``, ``sniffer``, ``pcapout``, ``display`` and ``run`` (which ties them together).
"""
