"""numpydoc's rules on every public docstring, as the documentation build applies them.

``docs/conf.py`` runs the same rules (``numpydoc_validation_checks``) on the
pages it builds; this test finds a broken docstring without building the
site, and also asks every public class and function for an example.
"""

import importlib
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

#: Rules the house style departs from, as scikit-learn's does: returns are
#: named (``self : object``), an extended summary and a See Also section
#: are not required everywhere, and a summary may run to a second line.
IGNORED = {"ES01", "SA01", "SS06", "GL01", "GL02", "RT02"}

PUBLIC_MODULES = [
    "skdistill",
    "skdistill.bias",
    "skdistill.export",
    "skdistill.losses",
    "skdistill.metrics",
    "skdistill.persistence",
    "skdistill.plotting",
    "skdistill.progress",
    "skdistill.specialists",
    "skdistill.student",
    "skdistill.teachers",
    "skdistill.transfer",
]


def _public_objects():
    """(qualified name, is a method) of each public function, class and method
    skdistill defines, on the class or on a private base of skdistill's
    (methods inherited from other libraries are their own libraries')."""
    seen = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or id(obj) in seen:
                continue
            seen.add(id(obj))
            yield f"{module_name}.{name}", False
            if not inspect.isclass(obj):
                continue
            members = {}
            for base in reversed(obj.__mro__):
                if base.__module__.split(".")[0] == "skdistill":
                    members.update(vars(base))
            for member, value in members.items():
                if not member.startswith("_") and (
                    inspect.isfunction(value) or isinstance(value, (classmethod, staticmethod))
                ):
                    yield f"{module_name}.{name}.{member}", True


@pytest.mark.parametrize("name, is_method", list(_public_objects()))
def test_docstring_follows_numpydoc(name, is_method):
    # Every public class and function shows a runnable example (run by the
    # doctests); a method may rely on its class's.
    ignored = IGNORED | {"EX01"} if is_method else IGNORED
    errors = [
        f"{code}: {message}"
        for code, message in numpydoc_validate.validate(name)["errors"]
        if code not in ignored
    ]
    assert not errors, f"{name}:\n" + "\n".join(errors)
