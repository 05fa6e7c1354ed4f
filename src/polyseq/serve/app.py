"""The HTTP app: LibreTranslate's API field for field (JSON bodies, form bodies and the query
string alike; CORS open to every origin, as LibreTranslate's), polyseq's own `/v1/translate`,
health, readiness and Prometheus metrics, and a web page at `/`.

Every error is `{"error": message}` with LibreTranslate's statuses: 400 for bad input and a missing
key, 403 for an unknown key, 429 for limits and a full queue (with Retry-After), 500 when decoding
fails; 503 for a request that waited past its timeout or arrives while the server stops. No path,
file or model ever comes from a request. Text already in its target language (a source equal to
the target, or detected as it) comes back as it is, as LibreTranslate returns it, unless a model
serves that language to itself (a corrector).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from polyseq.config import ConfigError, ServeConfig
from polyseq.serve.batcher import Batcher, Job, Overloaded, ShuttingDown
from polyseq.serve.limits import Limiter, Refused
from polyseq.serve.metrics import Metrics
from polyseq.serve.models import NAMES, Models, ServedModel, unique_names
from polyseq.serve.requests import read_fields
from polyseq.translator import TranslationCandidate, Translator

logger = logging.getLogger("polyseq.serve")
FILE_FORMATS = {".md": "markdown", ".markdown": "markdown", ".json": "json", ".html": "html",
                ".htm": "html", ".po": "po", ".pot": "po", ".txt": "plain"}


def _glossaries(files: dict[str, str]) -> dict[tuple[str, str], Any]:
    """serve.glossaries: a Glossary for each direction named."""
    if not files:
        return {}
    from polyseq.documents.glossary import Glossary

    glossaries = {}
    for direction, path in files.items():
        src, _, tgt = direction.partition("-")
        glossaries[(src, tgt)] = Glossary.load(path)
    return glossaries


class Server:
    """What the endpoints share: settings, models, limits, metrics, and the files to download."""

    def __init__(self, config: ServeConfig, model_dirs: list[Path]):
        self.config, self.model_dirs = config, model_dirs
        self.limiter = Limiter(config)
        self.metrics = Metrics()
        self.models = Models([])
        self.files = Path(tempfile.mkdtemp(prefix="polyseq-serve-"))
        self.file_names: dict[str, str] = {}  # a translated file -> the name it was uploaded with
        self._detectors: dict[tuple[str, ...], Any] = {}
        self.glossaries = _glossaries(config.glossaries)  # read before the models: an error is quick

    def load(self) -> None:
        for name, path in zip(unique_names(self.model_dirs), self.model_dirs, strict=True):
            translator = Translator.load(path)
            batcher = Batcher(name, translator, self.config.max_batch_tokens, self.config.max_wait_ms,
                              self.config.queue_items, self.config.threads, self.config.batching,
                              self.metrics.record_batch)
            batcher.start()
            self.metrics.watch_queue(name, functools.partial(getattr, batcher, "depth"))
            self.models.served.append(ServedModel(name, translator, batcher))
        served = set(self.languages())
        unserved = [f"{src}-{tgt}" for src, tgt in self.glossaries if not {src, tgt} <= served]
        if unserved:
            raise ConfigError(f"serve.glossaries: no model serves {', '.join(unserved)} (the directions "
                              f"are in the models' codes: {', '.join(sorted(served))})")

    def close(self) -> None:
        for model in self.models.served:
            model.batcher.close()
        for model in self.models.served:
            model.batcher.join(self.config.request_timeout_s)
        shutil.rmtree(self.files, ignore_errors=True)

    # ------------------------------------------------------------------------ translating

    def languages(self) -> list[str]:
        targets = self.models.targets()
        return sorted(set(targets) | {t for ts in targets.values() for t in ts})

    def code(self, name: str) -> str:
        """A request's language code as a served one: LibreTranslate's clients also send "EN",
        "pt-BR" or "zh-Hans" for a model's en, pt or zh."""
        known = self.languages()
        for candidate in (name, name.lower(), name.lower().replace("_", "-").split("-")[0]):
            if candidate in known:
                return candidate
        return name

    def model_for(self, src: str, tgt: str) -> ServedModel | None:
        """The model that serves src -> tgt; None for text already in its target language that no
        model serves to itself (it is returned as it is)."""
        known = self.languages()
        for code in (src, tgt):
            if code not in known:
                raise Refused(400, f"{code} is not supported")
        model = self.models.find(src, tgt)
        if model is None and src != tgt:
            raise Refused(400, f"{NAMES.get(tgt, tgt)} ({tgt}) is not available as a target language "
                          f"from {NAMES.get(src, src)} ({src})")
        return model

    async def translate(self, texts: list[str], src: str, tgt: str, strategy: str,
                        settings: dict[str, Any], prefix: str | None = None
                        ) -> list[list[TranslationCandidate]]:
        model = self.model_for(src, tgt)
        if model is None:  # the callers return text already in its target language as it is
            raise RuntimeError(f"no model translates {src} to itself")
        try:
            return await asyncio.wait_for(model.batcher.submit(texts, Job.of(src, tgt, strategy, settings),
                                                               prefix), self.config.request_timeout_s)
        except Overloaded:
            # Retry-After: about when the texts waiting now will have been decoded
            wait = model.batcher.depth * model.batcher.seconds_per_item
            raise Refused(429, "The server is busy: too many texts are waiting; try again shortly",
                          retry_after=max(wait, 1.0)) from None
        except ShuttingDown:
            raise Refused(503, "The server is shutting down") from None
        except TimeoutError:
            raise Refused(503, f"The request waited more than {self.config.request_timeout_s:g} s; "
                          "try again later") from None
        except ValueError as error:  # the Translator's InputError, a strategy's ConfigError
            raise Refused(400, str(error)) from None

    def segment_translator(self, src: str, tgt: str, strategy: str,
                           loop: asyncio.AbstractEventLoop) -> Callable[[list[str]], list[str]]:
        """For the documents API, which runs in a worker thread: its segments go through the
        batcher like any request's items."""

        def translate(texts: list[str]) -> list[str]:
            future = asyncio.run_coroutine_threadsafe(self.translate(texts, src, tgt, strategy, {}), loop)
            return [candidates[0].text if candidates else "" for candidates in future.result()]

        return translate

    async def translate_document(self, text: str, format: str, src: str, tgt: str,
                                 terms: dict[str, str] | None = None) -> str:
        """`text` in `format`, with the direction's glossary and a request's own `terms` (which win)."""
        from polyseq.documents import translate_document

        if self.model_for(src, tgt) is None:
            return text
        engine = self.segment_translator(src, tgt, self.config.strategy, asyncio.get_running_loop())
        try:
            result = await asyncio.to_thread(translate_document, text, format, engine, src_lang=src,
                                             tgt_lang=tgt, glossary=self.glossary(src, tgt, terms))
        except ValueError as error:  # a DocumentError: a malformed .po, invalid JSON, a NUL, ...
            raise Refused(400, f"Invalid request: {error}") from None
        return result.text

    def glossary(self, src: str, tgt: str, terms: dict[str, str] | None) -> Any:
        """The direction's glossary (serve.glossaries) with a request's `terms` over it; None for
        neither."""
        if not terms:
            return self.glossaries.get((src, tgt))
        from polyseq.documents.glossary import Glossary

        configured = self.glossaries.get((src, tgt))
        return Glossary({**(configured.terms if configured else {}), **terms}, "the request's glossary")

    async def document_language(self, text: str, format: str, target: str) -> str:
        """The language of a document's text, its markup, code and keys left out."""
        from polyseq.documents import translate_document

        segments: list[str] = []

        def keep(texts: list[str]) -> list[str]:
            segments.extend(texts)
            return texts

        try:
            await asyncio.to_thread(translate_document, text, format, keep)
        except ValueError as error:
            raise Refused(400, f"Invalid request: {error}") from None
        prose = "\n".join(segments)[:2000]
        return self.detector(self.sources_for(target)).detect(prose or text[:2000], 1)[0].language

    def sources_for(self, target: str) -> list[str]:
        """What `source=auto` tells apart: the languages translated into `target`, and `target`
        itself (text already in it comes back as it is)."""
        return sorted({*self.models.sources_into(target), target})

    def detector(self, languages: list[str]) -> Any:
        from polyseq.text.langid import LanguageDetector, LanguageIdError

        key = tuple(sorted(languages))
        if key not in self._detectors:
            try:
                self._detectors[key] = LanguageDetector(key)
            except LanguageIdError as error:
                raise Refused(400, f"Cannot detect the language: {error}") from None
        return self._detectors[key]

    def expire_files(self) -> None:
        cutoff = time.time() - self.config.file_ttl_s
        for path in self.files.iterdir():
            if path.stat().st_mtime < cutoff:
                path.unlink(missing_ok=True)
                self.file_names.pop(path.name, None)


def create_app(config: ServeConfig, model_dirs: Sequence[str | Path]) -> FastAPI:
    """The app for `polyseq serve`: models load when it starts and finish their work when it stops."""
    server = Server(config, [Path(path) for path in model_dirs])

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(server.load)
        yield
        await asyncio.to_thread(server.close)

    app = FastAPI(title="polyseq", lifespan=lifespan, docs_url="/docs")
    app.state.server = server
    # browser pages and extensions on other origins call it, as they call LibreTranslate
    app.add_middleware(CORSMiddleware, allow_origins=["*"], allow_methods=["GET", "POST"],
                       allow_headers=["Authorization", "Content-Type"])

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        """404, 405, an oversized form part: LibreTranslate's {"error": ...} shape too."""
        return JSONResponse({"error": str(error.detail)}, status_code=error.status_code)

    @app.middleware("http")
    async def measure(request: Request, call_next: Callable[[Request], Any]) -> Response:
        start = time.perf_counter()
        endpoint = request.url.path if request.url.path in routes else "other"
        server.metrics.in_progress.labels(endpoint).inc()
        try:
            response: Response = await call_next(request)
        except Exception as error:  # noqa: BLE001 - one clear 500, never a dropped connection
            logger.exception("%s %s failed", request.method, request.url.path)
            response = JSONResponse({"error": f"Internal error ({type(error).__name__}); the server "
                                     "log has the details"}, status_code=500)
        finally:
            server.metrics.in_progress.labels(endpoint).dec()
        server.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)
        server.metrics.requests.labels(endpoint, str(response.status_code)).inc()
        return response

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return resources.files("polyseq.serve").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        loaded = [model.name for model in server.models.served]
        if len(loaded) < len(server.model_dirs):
            return JSONResponse({"status": "loading", "models": loaded}, status_code=503)
        return JSONResponse({"status": "ready", "models": loaded})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(server.metrics.render(), media_type="text/plain; version=0.0.4")

    # POST too: libretranslatepy before 2.1.3 and argostranslate's API client send it (LibreTranslate
    # answers 405 since 2022)
    @app.api_route("/languages", methods=["GET", "POST"])
    async def languages() -> list[dict[str, Any]]:
        targets = server.models.targets()  # and each language itself, as LibreTranslate lists them
        return [{"code": code, "name": NAMES.get(code, code),
                 "targets": sorted({code, *targets.get(code, [])})} for code in server.languages()]

    @app.get("/frontend/settings")
    async def frontend_settings() -> dict[str, Any]:
        targets = server.models.targets()
        source = next(iter(targets), "")
        target = (targets.get(source) or [""])[0]
        # LibreTranslate's fields, and alternativesLimit, which the web page needs beside them
        return {"charLimit": config.char_limit, "frontendTimeout": 500,
                "alternativesLimit": config.alternatives_limit,
                "apiKeys": bool(server.limiter.keys), "keyRequired": config.require_api_key,
                "suggestions": False, "filesTranslation": True,
                "supportedFilesFormat": sorted(FILE_FORMATS),
                "language": {"source": {"code": "auto", "name": "Auto Detect"},
                             "target": {"code": target, "name": NAMES.get(target, target)}}}

    @app.post("/detect")
    async def detect(request: Request) -> list[dict[str, Any]]:
        fields = await read_fields(request, config.max_request_bytes)
        texts, _ = fields.texts(config.batch_limit, config.char_limit)
        server.limiter.admit(fields.text("api_key"), _client(request), sum(map(len, texts)))
        return _detections(server.detector(server.languages()), texts)

    @app.post("/suggest")
    async def suggest() -> None:
        raise Refused(403, "Suggestions are disabled on this server.")

    @app.post("/translate")
    async def translate(request: Request) -> dict[str, Any]:
        fields = await read_fields(request, config.max_request_bytes)
        texts, batch = fields.texts(config.batch_limit, config.char_limit)
        source, target = server.code(fields.required("source")), server.code(fields.required("target"))
        text_format = fields.text("format") or "text"
        if text_format not in ("text", "html"):
            raise Refused(400, f"{text_format} format is not supported")
        # LibreTranslate takes a negative count as none
        alternatives = fields.integer("alternatives", 0, config.alternatives_limit, raise_to_low=True)
        terms = _request_terms(fields.mapping("glossary"), config.max_glossary_terms)
        server.limiter.admit(fields.text("api_key"), _client(request),
                             sum(map(len, texts)) + sum(len(k) + len(v) for k, v in terms.items()))
        sources, detected = _sources(server, texts, source, target)
        results: list[list[str]] = [[] for _ in texts]
        strategy, settings = config.strategy, {}
        if alternatives:  # a few more candidates than asked: some detokenize to the same text
            n = min(2 * alternatives + 1, config.max_beam_size)
            strategy, settings = "beam", {"beam_size": max(5, n), "n_best": n}
        for src in sorted(set(sources)):
            indices = [i for i, s in enumerate(sources) if s == src]
            if server.model_for(src, target) is None:  # already in the target language
                outputs = [[texts[i]] for i in indices]
            elif text_format == "html" or terms or (src, target) in server.glossaries:  # text with a glossary
                kind = "plain" if text_format == "text" else "html"  # as a plain-text document
                documents = [server.translate_document(texts[i], kind, src, target, terms) for i in indices]
                outputs = [[text] for text in await asyncio.gather(*documents)]  # their segments batch
            else:
                chosen = [texts[i] for i in indices]
                candidates = await server.translate(chosen, src, target, strategy, settings)
                outputs = [list(dict.fromkeys(c.text for c in group)) or [""] for group in candidates]
            for index, output in zip(indices, outputs, strict=True):
                results[index] = output
        response: dict[str, Any] = {"translatedText": [r[0] for r in results] if batch else results[0][0]}
        if detected is not None:
            response["detectedLanguage"] = detected if batch else detected[0]
        if alternatives:
            others = [r[1 : alternatives + 1] for r in results]
            response["alternatives"] = others if batch else others[0]
        return response

    @app.post("/translate_file")
    async def translate_file(request: Request) -> dict[str, str]:
        fields = await read_fields(request, config.max_upload_bytes + config.max_request_bytes)
        upload = fields.file("file", config.max_upload_bytes)
        source, target = server.code(fields.required("source")), server.code(fields.required("target"))
        suffix = Path(upload.name).suffix.lower()
        if suffix not in FILE_FORMATS:
            raise Refused(400, f"Invalid request: file format not supported ({suffix or 'no extension'}; "
                          f"supported: {', '.join(sorted(FILE_FORMATS))})")
        try:
            text = upload.data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise Refused(400, f"Invalid request: {upload.name} is not UTF-8 text (byte {error.start})"
                          ) from None
        terms = _request_terms(fields.mapping("glossary"), config.max_glossary_terms)
        server.limiter.admit(fields.text("api_key"), _client(request), len(text))
        server.model_for(target if source == "auto" else source, target)  # a clear 400 first
        if source == "auto":
            source = await server.document_language(text, FILE_FORMATS[suffix], target)
        translated = await server.translate_document(text, FILE_FORMATS[suffix], source, target, terms)
        server.expire_files()
        name = f"{uuid.uuid4().hex}{suffix}"
        (server.files / name).write_text(translated, encoding="utf-8")
        server.file_names[name] = Path(upload.name).name or f"translated{suffix}"
        return {"translatedFileUrl": f"{str(request.base_url).rstrip('/')}/download_file/{name}"}

    @app.get("/download_file/{name}")
    async def download_file(name: str) -> FileResponse:
        server.expire_files()
        path = server.files / name
        if Path(name).name != name or not name[:32].isalnum() or not path.is_file():
            raise Refused(404, "No such file: translated files expire after "
                          f"{config.file_ttl_s:g} s")
        return FileResponse(path, filename=server.file_names.get(name, f"translated{path.suffix}"))

    @app.post("/v1/translate")
    async def translate_native(request: Request) -> dict[str, Any]:
        fields = await read_fields(request, config.max_request_bytes)
        texts, batch = fields.texts(config.batch_limit, config.char_limit)
        source, target = server.code(fields.required("source")), server.code(fields.required("target"))
        strategy = fields.text("strategy") or config.strategy
        settings = fields.mapping("settings")
        n_best = fields.integer("n_best", 1, config.max_beam_size, default=settings.get("n_best", 1))
        if n_best > 1:
            settings["n_best"] = n_best
        _check_settings(strategy, settings, config.max_beam_size)
        prefix = fields.text("prefix") or None
        server.limiter.admit(fields.text("api_key"), _client(request), sum(map(len, texts)))
        start = time.perf_counter()
        sources, detected = _sources(server, texts, source, target)
        translations: list[dict[str, Any]] = [{} for _ in texts]
        for src in sorted(set(sources)):
            indices = [i for i, s in enumerate(sources) if s == src]
            if server.model_for(src, target) is None:  # already in the target language: no candidates
                for index in indices:
                    translations[index] = {"text": texts[index], "source": src, "candidates": []}
                continue
            chosen = [texts[i] for i in indices]
            groups = await server.translate(chosen, src, target, strategy, settings, prefix)
            for index, group in zip(indices, groups, strict=True):
                translations[index] = {
                    "text": group[0].text if group else "", "source": src,
                    "candidates": [{"text": c.text, "score": c.hypothesis.score,
                                    "log_prob": c.hypothesis.log_prob, "tokens": len(c.hypothesis.tokens)}
                                   for c in group[:n_best]]}
        stats = {"items": len(texts), "seconds": round(time.perf_counter() - start, 4),
                 "output_tokens": sum(t["candidates"][0]["tokens"] for t in translations if t["candidates"])}
        if detected is not None:
            for translation, found in zip(translations, detected, strict=True):
                translation["detected"] = found
        return {"translations": translations if batch else translations[:1], "stats": stats}

    routes = {getattr(route, "path", "") for route in app.routes}  # metrics label by these paths
    return app


def _check_settings(strategy: str, settings: dict[str, Any], max_beam_size: int) -> None:
    """A request's strategy settings: known to the strategy, within the server's bounds, and never a
    path on the server (a draft model is the operator's to choose)."""
    from polyseq.config import ConfigError
    from polyseq.decoding import make_config

    if "draft_model" in settings:
        raise Refused(400, "Invalid request: draft_model cannot come from a request")
    for name in ("beam_size", "n_best", "groups", "num_samples"):
        value = settings.get(name, 1)
        if not isinstance(value, int) or not 1 <= value <= max_beam_size:
            raise Refused(400, f"Invalid request: {name} must be from 1 to {max_beam_size}")
    try:
        make_config(strategy, settings)
    except (ConfigError, TypeError, ValueError) as error:
        raise Refused(400, f"Invalid request: {error}") from None


def _request_terms(value: dict[str, Any], limit: int) -> dict[str, str]:
    """A request's `glossary`: {term: translation} strings, at most `limit` of them; 400 else."""
    from polyseq.documents.glossary import Glossary, GlossaryError

    if len(value) > limit:
        raise Refused(400, f"Invalid request: glossary has {len(value)} terms, more than "
                      f"serve.max_glossary_terms ({limit})")
    try:
        return Glossary(value, "glossary").terms
    except GlossaryError as error:
        raise Refused(400, f"Invalid request: {error}") from None


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _sources(server: Server, texts: list[str], source: str, target: str
             ) -> tuple[list[str], list[dict[str, Any]] | None]:
    """Each text's source language: `source`, or with "auto" the one detected for that text among
    the languages that translate into `target` and the target itself (and what was detected,
    LibreTranslate's way)."""
    server.model_for(target if source == "auto" else source, target)  # a clear 400 first
    if source != "auto":
        return [source] * len(texts), None
    found = server.detector(server.sources_for(target)).detect_each(texts)
    return ([d.language for d in found],
            [{"confidence": round(100 * d.confidence, 2), "language": d.language} for d in found])


def _detections(detector: Any, texts: list[str]) -> list[dict[str, Any]]:
    """/detect's answer, LibreTranslate's way: each text's likely languages; over a list, each
    language's mean confidence, ranked by confidence x the length of the texts it was found in."""
    found: dict[str, list[tuple[float, int]]] = {}
    for text in texts:
        if text.strip():
            for detection in detector.detect(text):
                found.setdefault(detection.language, []).append((detection.confidence, len(text)))
    if not found:  # no text to tell: LibreTranslate answers its first language with no confidence
        return [{"confidence": 0.0, "language": detector.languages[0]}]
    ranked = [(language, sum(c for c, _ in hits) / len(hits), sum(n for _, n in hits))
              for language, hits in found.items()]
    ranked.sort(key=lambda entry: entry[1] * entry[2], reverse=True)
    return [{"confidence": round(100 * confidence, 2), "language": language}
            for language, confidence, _ in ranked]


__all__ = ["Server", "create_app"]
