"""Layer 0: the one common model (Schema, Table, Column, ...), findings, and naming helpers. Imports nothing of ours."""
