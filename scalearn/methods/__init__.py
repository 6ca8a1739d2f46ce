"""Methods registry: name → what the model holds, what is loaded, what trains, and the paper's defaults.

Adding a method: a small file here with a ``@register("name")`` dataclass, imported below, and a row
in the method matrix test.
"""

from scalearn.methods import (  # noqa: F401  (registration)
    adapter,
    compacter,
    full_ft,
    fusion,
    ia3,
    joint,
    lora,
    probe,
    propetl,
    scalearn,
    soup,
)
from scalearn.methods.base import METHODS, Method, UnknownMethodError, get_method, method_names, register

__all__ = ["METHODS", "Method", "UnknownMethodError", "get_method", "method_names", "register"]
