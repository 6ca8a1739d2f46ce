"""Methods registry: name → what the model holds, what is loaded, what trains, and the paper's defaults.

Adding a method: a small file here with a ``@register("name")`` class (its fields are the method's
hyper-parameters, checked by pydantic; torch is imported only when it builds a model), imported below, and a row
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
from scalearn.methods.base import (
    METHODS,
    Method,
    UnknownMethodError,
    get_method,
    method_class,
    method_names,
    register,
    value_problems,
)

__all__ = [
    "METHODS",
    "Method",
    "UnknownMethodError",
    "get_method",
    "method_class",
    "method_names",
    "register",
    "value_problems",
]
