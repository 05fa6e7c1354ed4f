"""`polyseq serve`: models behind HTTP, LibreTranslate-compatible, with requests batched on each
model (the `serve` extra: FastAPI and uvicorn)."""
