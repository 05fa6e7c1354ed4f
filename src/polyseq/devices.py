"""Which device a model trains or decodes on, checked before any work starts."""

from __future__ import annotations

import torch


class DeviceError(ValueError):
    """The named device does not exist here (the message says which and why)."""


def usable_device(name: str | torch.device) -> torch.device:
    """The device `name` names, once a tensor could be made there: a bad name, a build without
    that backend or a missing GPU fails here with one clear line, not deep inside a model."""
    try:
        device = torch.device(name)
        torch.empty(1, device=device)
    except (RuntimeError, AssertionError) as error:  # an unknown name; no such backend or device
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DeviceError(f"device {str(name)!r} cannot be used here ({reason}); "
                          f"choose cpu or a device this machine has") from None
    return device
