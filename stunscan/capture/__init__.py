"""The capture pipeline, shared by ``stunscan pcap``, ``decode`` and ``explain``.

files       pcap / pcapng records -> :class:`~stunscan.capture.files.Frame`
stream      frame -> link -> IP -> UDP / TCP (reassembly) / ICMP -> messages with context
fastpath    the same decisions for a batch of classic-pcap Ethernet frames, with numpy
recordwalk  record boundaries of a classic pcap found in bulk (for the fast path)
sources     what ``decode`` / ``explain`` read: captures, raw files, hex
"""
