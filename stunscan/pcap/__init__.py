"""``stunscan pcap``: pairing requests with responses, servers, summary, parallel runs.

analyzer  requests paired with responses (a :class:`~stunscan.capture.stream.MessageFinder`)
feed      a capture fed to the analyser, through the numpy fast path where it can be
sighting  a response to report, kept as bytes until its row is wanted
parallel  one large capture on several cores, merged to one process's answer
run       the command: files in, writers and tables out
"""
