"""`python -m polyseq`: the command line (and what torchrun runs with -m polyseq)."""

from polyseq.cli import app

app()
