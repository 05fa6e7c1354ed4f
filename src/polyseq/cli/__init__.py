"""The `polyseq` command line (Typer). Each command is a few lines that call the library; errors a
user can act on are printed as one clear line with exit status 2."""

from polyseq.cli import align, codeswitch, correct, detect, processes, translate  # noqa: F401  (they add their commands)
from polyseq.cli.common import app

__all__ = ["app"]
