"""``stunscan report`` and ``stunscan verify``: Shadowserver "Accessible STUN Service" CSVs in.

``inputs`` loads any number of report CSVs (stunscan's own or Shadowserver's: plain, gzip,
zip, header-driven) into one typed DuckDB table; ``queries`` holds every statistic as named
SQL; ``figures`` runs them; ``tables`` and ``page`` show them (terminal, HTML); ``verify``
asks the listed hosts again with the probe's own machinery.
"""
