"""Devices: the one parser of device strings, which devices exist here, and what each compiles.

A device string is a device (``CPU``, ``GPU.1``, ``NPU``) or a virtual device over others
(``AUTO``, ``AUTO:GPU,CPU``, ``AUTO:-CPU``, ``HETERO:GPU.1,CPU``, ``MULTI:CPU(4),GPU``);
:func:`parse_device` is the only code that splits one. What a device compiles beyond static
shapes is data (:class:`Capabilities`, :data:`DEVICE_RULES`): known by its type (the NPU plugin
takes static shapes only) or found by trying once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

from shapedemo.runtime.errors import EngineError

VIRTUAL_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")


@dataclass(frozen=True)
class DeviceName:
    """A device string taken apart: ``head`` before ``:``, ``parts`` the devices named after it
    (priorities ``(4)`` and exclusions ``-`` stripped).

    >>> d = parse_device("HETERO:GPU.1,CPU")
    >>> d.head, d.parts, d.virtual, d.named
    ('HETERO', ('GPU.1', 'CPU'), True, ('GPU.1', 'CPU'))
    >>> parse_device("MULTI:CPU(4),GPU").parts, parse_device("AUTO:-CPU").parts
    (('CPU', 'GPU'), ('CPU',))
    >>> parse_device(" GPU.1 ").type, parse_device("GPU.1").named, parse_device("AUTO").named
    ('GPU', ('GPU.1',), ('AUTO',))
    """

    text: str
    head: str
    parts: tuple[str, ...]
    listed: bool
    """Whether the string has a ``:`` list of devices (``AUTO:GPU,CPU``; not bare ``AUTO``)."""

    @property
    def virtual(self) -> bool:
        """AUTO, HETERO, MULTI or BATCH: a device that runs on others."""
        return self.head in VIRTUAL_DEVICES

    @property
    def type(self) -> str:
        """The device type, its name before ``.`` (``GPU.1`` -> ``GPU``): what
        :data:`DEVICE_RULES` is keyed by."""
        return self.head.split(".")[0]

    @property
    def named(self) -> tuple[str, ...]:
        """The devices the string names: the listed ones, else the device itself."""
        return self.parts if self.listed else (self.head,)


def parse_device(device: str) -> DeviceName:
    """Take a device string apart (see :class:`DeviceName`); the one place that splits one."""
    text = (device or "").strip()
    head, colon, rest = text.partition(":")
    parts = tuple(re.sub(r"\(.*\)$", "", p.strip()).lstrip("-") for p in rest.split(",") if p.strip())
    return DeviceName(text, head.strip(), parts, bool(colon))


def _present(name: str, available: Sequence[str]) -> bool:
    return name in available or any(a.startswith(name + ".") for a in available)


def check_device(core: Any, device: str) -> str:
    """``device`` if OpenVINO here can compile for it (a listed device, or AUTO / HETERO: /
    MULTI: over listed devices), else an :class:`EngineError` in one line."""
    available = list(core.available_devices)
    name = parse_device(device)
    ok = bool(name.text)
    if name.virtual:
        ok = (name.head == "AUTO" or bool(name.parts)) and all(_present(p, available) for p in name.parts)
    elif ok:
        ok = not name.listed and _present(name.head, available)
    if not ok:
        raise EngineError(
            f"device {device!r} is not available here (have: {', '.join(available) or 'none'}; "
            "also AUTO, or AUTO:, HETERO: or MULTI: followed by devices such as CPU,GPU)"
        )
    return name.text


def available_devices(core: Any | None = None) -> list[tuple[str, str]]:
    """``(name, full name)`` of every device OpenVINO finds here, then ``AUTO``: the page's
    device dropdown. A device whose name cannot be read is listed by its name.

    >>> ("CPU" in [name for name, _ in available_devices()], available_devices()[-1][0])
    (True, 'AUTO')
    """
    import openvino as ov

    core = core or ov.Core()
    rows = []
    for name in core.available_devices:
        try:
            full = str(core.get_property(name, "FULL_DEVICE_NAME"))
        except Exception:
            full = name
        rows.append((name, full))
    rows.append(("AUTO", f"AUTO: OpenVINO picks among {', '.join(n for n, _ in rows) or 'none'}"))
    return rows


@dataclass(frozen=True)
class Capabilities:
    """Which non-static shapes a device compiles: ``True``/``False`` once known (by the device's
    type, by static-only mode, or tried once), ``None`` while not tried yet; a ``False`` carries
    the device's reason in one line.

    >>> Capabilities(dynamic=False, bounded=None, dynamic_reason="static shapes only").to_dict()["dynamic"]
    False
    """

    dynamic: bool | None
    bounded: bool | None
    dynamic_reason: str | None = None
    bounded_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dynamic": self.dynamic,
            "bounded": self.bounded,
            "dynamic_reason": self.dynamic_reason,
            "bounded_reason": self.bounded_reason,
        }


DEVICE_RULES: dict[str, dict[str, str]] = {
    # OpenVINO's NPU plugin documents static shapes only; newer plugins may take bounded dims,
    # so "bounded" is left to trying.
    "NPU": {"dynamic": "the NPU plugin compiles static shapes only (OpenVINO NPU device docs, limitations)"},
}
"""Known refusals by device type (the name before ``.``); what is not here is tried once."""

STATIC_ONLY_REASON = "static-only mode: dynamic and bounded shapes refused, as the strictest device (an NPU) would"



def device_rules(device: str) -> dict[str, str]:
    """The known refusals of ``device``'s type (``{kind: reason}``; empty: try).

    >>> sorted(device_rules("NPU")), device_rules("GPU.1")
    (['dynamic'], {})
    """
    return dict(DEVICE_RULES.get(parse_device(device).type, {}))
