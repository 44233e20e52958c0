"""Every touch of google-genai's internals: the private names we use, and the speed-ups we patch in.

A patch replaces one global of one private SDK module, and applies only while the SDK code that
relies on that global is the code the patch was tested with: the source of every function or
class of the module that uses it (found, not listed by hand, so a new user also counts) hashes
to the fingerprint recorded below. Otherwise the patch stays off, one warning goes to the log,
and the SDK runs as shipped: correct, only slower. `JUPYTER_INTERACTIONS_SDK_PATCH=0` turns
every patch off.

google.genai takes seconds to import, so nothing here imports it before it is used.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import CodeType, ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # at run time the module __getattr__ below imports it on first use
    from google.genai import _interactions as errors  # the SDK's exception classes

__all__ = ["OPT_OUT", "errors", "fingerprint", "patch_state", "speed_up_sdk"]

OPT_OUT = "JUPYTER_INTERACTIONS_SDK_PATCH"  # "0" (or false/no/off) leaves the SDK unpatched

# sha256 of the SDK source each patch relies on (see `fingerprint`), from google-genai 3.6.1.
# A new SDK version that changes that source turns the patch off until someone reads the new
# code against the patch, runs the test suite on it, and records the new value here.
FINGERPRINTS = {
    "model-classes": "3e77e198213d2add9d20019577eb12f2ba5643ad7887e1dc5dbde3cb568beaf9",
    "event-dicts": "8e5303563f730dcae67157dd9d34f83dca5e0f9f45482667ec43111a3502dd33",
}

log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    if name == "errors":
        return importlib.import_module("google.genai._interactions")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Patch:
    """One SDK module global swapped for a cheaper one that returns the same results."""

    name: str  # its key in FINGERPRINTS
    module: str  # the private SDK module
    attribute: str  # the module global replaced
    original: Callable[[], Any]  # what that global must be: the library function it names
    also: tuple[str, ...]  # other names of the module whose source the patch relies on
    build: Callable[[ModuleType, Any], Any]  # (module, original) -> the replacement
    why: str


def _cached_classes(module: ModuleType, create_model: Any) -> Any:
    """`pydantic.create_model`, remembering each class it built by its arguments."""
    built: dict[Any, Any] = {}

    def create_model_once(model_name: str, /, **arguments: Any) -> Any:
        try:  # a config is a dict the SDK builds anew on each call: key on its items
            key = (model_name, *[(k, _items(v)) for k, v in arguments.items()])
            return built[key]
        except TypeError:  # an unhashable field type: build it as the SDK would
            return create_model(model_name, **{"__module__": module.__name__, **arguments})
        except KeyError:
            # named after the SDK's module, as pydantic names it after its caller's
            model = create_model(model_name, **{"__module__": module.__name__, **arguments})
            built[key] = model
            return model

    return create_model_once


def _items(value: Any) -> Any:
    return tuple(value.items()) if isinstance(value, dict) else value


def _shallow_asdict(module: ModuleType, asdict: Any) -> Any:
    def shallow_asdict(event: Any) -> dict[str, Any]:
        return {field.name: getattr(event, field.name) for field in dataclasses.fields(event)}

    return shallow_asdict


def _pydantic_create_model() -> Any:
    import pydantic

    return pydantic.create_model


PATCHES = (
    Patch(
        name="model-classes",
        module="google.genai._gaos.utils.serializers",
        attribute="create_model",
        original=_pydantic_create_model,
        also=(),
        build=_cached_classes,
        why=(
            "unmarshal and marshal_json build a new pydantic model class (`body: typ`) on every "
            "call: ~0.5 ms of CPU per SSE event parsed, ~40% of a unary create's CPU. The class "
            "depends only on its arguments, so it is built once per type."
        ),
    ),
    Patch(
        name="event-dicts",
        module="google.genai._gaos.utils.eventstreaming",
        attribute="asdict",
        original=lambda: dataclasses.asdict,
        also=("ServerEvent",),
        build=_shallow_asdict,
        why=(
            "_parse_event deep-copies each event with dataclasses.asdict only to json.dumps it "
            "at once; the event's data comes from json.loads, so a shallow dict dumps the same "
            "JSON (+12% events/s)."
        ),
    ),
)

_state: dict[str, str] = {}  # patch name -> "on", or why it is off; decided once per process


def speed_up_sdk() -> bool:
    """Apply every patch whose SDK code matches its fingerprint (once); True if all are on."""
    if not _state:
        _decide()
    return all(state == "on" for state in _state.values())


def patch_state() -> dict[str, str]:
    """Each patch's name with "on", or why it is off (empty before `speed_up_sdk`)."""
    return dict(_state)


def _decide() -> None:
    if os.environ.get(OPT_OUT, "").strip().lower() in ("0", "false", "no", "off"):
        _state.update({patch.name: f"off: {OPT_OUT} is set" for patch in PATCHES})
        log.debug("google-genai left unpatched: %s is set", OPT_OUT)
        return
    for patch in PATCHES:
        _state[patch.name] = _apply(patch)
    off = {name: state for name, state in _state.items() if state != "on"}
    if off:
        _warn(
            "google-genai runs unpatched (correct, but slower in a notebook): "
            + "; ".join(f"{name} {state}" for name, state in off.items())
            + ". Upgrade jupyter-interactions for this SDK version, or set "
            + f"{OPT_OUT}=0 to skip the check."
        )


def _apply(patch: Patch) -> str:
    try:
        module = importlib.import_module(patch.module)
    except ImportError:
        return f"off: this google-genai has no {patch.module}"
    current, original = getattr(module, patch.attribute, None), patch.original()
    if getattr(current, "__wrapped__", None) is original:
        return "on"  # applied before in this process (say, by a reloaded copy of this module)
    if current is not original:
        return f"off: {patch.module}.{patch.attribute} is not what the patch replaces"
    try:
        found = fingerprint(patch)
    except (OSError, TypeError) as exc:  # source not installed, or a name gone
        return f"off: cannot read the SDK source it relies on ({exc})"
    if found != FINGERPRINTS[patch.name]:
        return f"off: the SDK code it relies on changed (fingerprint {found[:12]})"
    replacement = patch.build(module, current)
    replacement.__wrapped__ = current  # marks it applied, and keeps the SDK's own
    setattr(module, patch.attribute, replacement)
    return "on"


def fingerprint(patch: Patch) -> str:
    """sha256 of the source of each function or class of the patch's module that uses the
    patched global, and of the other names it relies on, in name order."""
    module = importlib.import_module(patch.module)
    names = sorted({*_users(module, patch.attribute), *patch.also})
    digest = hashlib.sha256()
    for name in names:
        digest.update(f"{name}\n{inspect.getsource(getattr(module, name))}\n".encode())
    return digest.hexdigest()


def _users(module: ModuleType, global_name: str) -> Iterator[str]:
    """Names of the module's own functions and classes whose code reads `global_name`."""
    for name, value in vars(module).items():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isfunction(value):
            codes = [value.__code__]
        elif inspect.isclass(value):
            codes = [
                member.__code__
                for member in map(inspect.unwrap, vars(value).values())
                if inspect.isfunction(member)
            ]
        else:
            continue
        if any(global_name in _names(code) for code in codes):
            yield name


def _names(code: CodeType) -> set[str]:
    """Global and attribute names a code object reads, its nested functions' included."""
    names = set(code.co_names)
    for constant in code.co_consts:
        if isinstance(constant, CodeType):
            names |= _names(constant)
    return names


def _warn(message: str) -> None:
    # With no logging configured, Python's last-resort handler writes to sys.stderr, which
    # ipykernel shows in the running cell: send it to the process's own stderr (the Jupyter
    # server's log) instead.
    if not log.hasHandlers():
        log.addHandler(logging.StreamHandler(sys.__stderr__))
    log.warning(message)
