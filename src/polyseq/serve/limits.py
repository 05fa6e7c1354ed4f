"""API keys and rate limits: who may call, and how much.

Keys come from a TOML file, each with its own limits (the server's defaults where it names none):

    [keys.3f9c2a61e4]
    requests_per_minute = 600
    chars_per_minute = 1000000

A request without a key is limited by its client address with the server's defaults, or refused
when keys are required; an unknown key is refused, never treated as no key. Limits are token
buckets (a minute's worth at most, refilled continuously), kept per key or per address.
"""

from __future__ import annotations

import math
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

from polyseq.config import ConfigError, ServeConfig


class Refused(Exception):
    """A request refused before any work: its HTTP status, message and headers."""

    def __init__(self, status: int, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if retry_after else {}


@dataclass(frozen=True)
class KeyLimits:
    requests_per_minute: int
    chars_per_minute: int


def load_keys(path: str | Path, defaults: KeyLimits) -> dict[str, KeyLimits]:
    """The keys of a TOML keys file (see the module's docstring); ConfigError names what is wrong."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"API keys file {path} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: invalid TOML: {error}") from None
    keys: dict[str, KeyLimits] = {}
    for key, limits in data.get("keys", {}).items():
        unknown = set(limits) - {"requests_per_minute", "chars_per_minute"}
        values = {"requests_per_minute": limits.get("requests_per_minute", defaults.requests_per_minute),
                  "chars_per_minute": limits.get("chars_per_minute", defaults.chars_per_minute)}
        if unknown or len(key) < 8 or not all(isinstance(v, int) and v > 0 for v in values.values()):
            raise ConfigError(f"{path}: key {key[:4]}...: a key has at least 8 characters and only "
                              "requests_per_minute and chars_per_minute, positive integers")
        keys[key] = KeyLimits(**values)
    return keys


class _Bucket:
    def __init__(self, per_minute: int):
        self.capacity, self.rate = float(per_minute), per_minute / 60.0
        self.level, self.time = self.capacity, time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.time) * self.rate)
        self.time = now

    def wait(self, amount: float) -> float:
        """Seconds until `amount` is available (0: now)."""
        return max(0.0, (amount - self.level) / self.rate)


class Limiter:
    def __init__(self, config: ServeConfig):
        self.defaults = KeyLimits(config.requests_per_minute, config.chars_per_minute)
        self.keys = load_keys(config.api_keys_file, self.defaults) if config.api_keys_file else {}
        self.require_key = config.require_api_key
        self._buckets: dict[str, tuple[_Bucket, _Bucket]] = {}
        self._lock = threading.Lock()

    def admit(self, api_key: str | None, client: str, chars: int) -> None:
        """Count one request of `chars` characters, or raise Refused: 400 without a key where one is
        needed, 403 for a key the server does not know, 429 past the limits (LibreTranslate's
        statuses)."""
        if api_key:
            if api_key not in self.keys:
                raise Refused(403, "Invalid API key")
            identity, limits = f"key:{api_key}", self.keys[api_key]
        elif self.require_key:
            raise Refused(400, "This server needs an API key: send it as api_key (the server's operator "
                          "gives them)")
        else:
            identity, limits = f"address:{client}", self.defaults
        if chars > limits.chars_per_minute:
            raise Refused(429, f"Too many characters: {chars} in one request, {limits.chars_per_minute} "
                          "allowed per minute")
        with self._lock:
            requests, characters = self._buckets.setdefault(
                identity, (_Bucket(limits.requests_per_minute), _Bucket(limits.chars_per_minute)))
            now = time.monotonic()
            requests.refill(now)
            characters.refill(now)
            wait = max(requests.wait(1), characters.wait(chars))
            if wait > 0:
                raise Refused(429, f"Too many requests: slow down (limits per minute: "
                              f"{limits.requests_per_minute} requests, {limits.chars_per_minute} "
                              "characters)", retry_after=wait)
            requests.level -= 1
            characters.level -= chars
