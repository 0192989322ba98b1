"""Layer names the spec refuses without torch: names torch's containers use as attributes.

A layer is a child module under its ``name:`` (of an ``nn.Sequential``, or of a plain
``nn.Module`` inside a graph model), and torch refuses a child named like an attribute
(``training``, ``forward``, ``to``) with a bare ``KeyError``. The spec is torch-free, so it refuses
the attributes of ``nn.Module`` and ``nn.Sequential`` that every supported torch has, plus any
``__dunder__`` name; the YAML line comes with the error. Torch adds attributes from version to
version, so the compiler checks every name again against the torch that runs
(:mod:`nnspec.compile.names`).
"""

__all__ = ["RESERVED_LAYER_NAMES", "is_reserved", "name_clash"]

# Public attributes of nn.Module / nn.Sequential present since torch 1.x, and the three tables
# every Module holds; a test checks each is an attribute of the installed torch.
RESERVED_LAYER_NAMES: frozenset[str] = frozenset(
    {
        "_buffers",
        "_modules",
        "_parameters",
        "add_module",
        "append",
        "apply",
        "bfloat16",
        "buffers",
        "children",
        "cpu",
        "cuda",
        "double",
        "eval",
        "extend",
        "extra_repr",
        "float",
        "forward",
        "half",
        "insert",
        "load_state_dict",
        "modules",
        "named_buffers",
        "named_children",
        "named_modules",
        "named_parameters",
        "parameters",
        "pop",
        "register_backward_hook",
        "register_buffer",
        "register_forward_hook",
        "register_forward_pre_hook",
        "register_parameter",
        "requires_grad_",
        "share_memory",
        "state_dict",
        "to",
        "train",
        "training",
        "type",
        "zero_grad",
    }
)


def is_reserved(name: str) -> bool:
    """Whether the spec refuses ``name`` as a layer name (torch-free; see the module docstring).

    Example:
        >>> is_reserved("training"), is_reserved("__init__"), is_reserved("fc1")
        (True, True, False)
    """
    return name in RESERVED_LAYER_NAMES or (name.startswith("__") and name.endswith("__"))


def name_clash(name: str) -> str:
    """The error text for a layer named like a torch attribute, with its fix."""
    return (
        f"layer name {name!r} is an attribute of torch's nn.Module, which cannot hold a layer "
        f"under it; fix: rename the layer, e.g. name: {name.strip('_')}_layer"
    )
