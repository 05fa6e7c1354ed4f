"""Interoperability with Hugging Face transformers and CTranslate2.

`import_hf` turns a Marian, M2M-100/NLLB, BART, mBART or Pegasus checkpoint (a local directory or a
Hugging Face Hub id, see hub.py) into a polyseq model directory that every polyseq decoding strategy
runs; `export_hf` and `export_ct2` hand polyseq models to transformers and CTranslate2. See
docs/interop.md.
"""

from polyseq.interop.families import Family, InteropError
from polyseq.interop.hf import export_hf, import_hf
from polyseq.interop.tokenizers import load_tokenizer

__all__ = ["Family", "InteropError", "export_hf", "import_hf", "load_tokenizer"]
