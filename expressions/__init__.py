"""The expression language of definitions: `{{ … }}` in sandboxed Jinja, keeping JSON types.

The layer below every app: the definitions validate with it and the engine evaluates with
it. A project adds functions with `@function`:

    from expressions import function

    @function("vat")
    def vat(amount, rate=0.2):
        '''The VAT on an amount.'''
        return round(amount * rate, 2)
"""

from expressions import functions as _builtin_functions  # noqa: F401  (registers them)
from expressions.language import (
    ExpressionError,
    compile_errors,
    evaluate,
    is_true,
    registered_functions,
    render,
)
from expressions.registry import function

__all__ = [
    "ExpressionError",
    "compile_errors",
    "evaluate",
    "function",
    "is_true",
    "registered_functions",
    "render",
]
