"""JSON Schemas of every command's JSON output (package data; see stunscan.jsonshape)."""
