"""Your own operation: a formula in ``x`` and ``y`` over the integers mod p (``--task custom --expression``).

Allowed: ``+ - * / ^`` (``**`` too), parentheses, ``x``, ``y`` and integer constants. ``^`` is a power (not
Python's exclusive or) and its exponent must be a constant integer >= 0 (``x^(p-1)`` is not: write a number).
``/`` multiplies by the modular inverse, so a formula with a division needs a prime modulus, and its table holds
only the pairs where every divisor is nonzero mod p (for ``x / y``: ``y != 0``, as for the paper's ``div``).

The text is parsed with Python's ``ast`` and every node checked against that whitelist: nothing is evaluated but
the arithmetic above (no names but x and y, no calls, no attributes). A refusal names the offending part.

    >>> e = parse("x^3 + x*y^2 + y")
    >>> e.text
    'x^3 + x * y^2 + y'
    >>> import numpy as np
    >>> z, ok = e.evaluate(np.array([2]), np.array([3]), 7)
    >>> int(z[0]), bool(ok[0])
    (1, True)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from .errors import ConfigError
from .lazy import lazy

np = lazy("numpy")

MAX_EXPONENT = 10**6
MAX_LENGTH = 500
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^"}


@dataclass(frozen=True)
class Expression:
    """A parsed, checked formula: ``text`` its canonical spelling (the run identity uses it), ``divides``
    whether it has a division (then the modulus must be prime)."""

    text: str
    tree: ast.Expression
    divides: bool

    def evaluate(self, x: np.ndarray, y: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
        """The formula mod ``p`` at every pair (int64 arrays of residues): (values, defined), where ``defined``
        is False where a divisor is 0 mod p."""
        ok = np.ones(np.broadcast(x, y).shape, dtype=bool)
        z = _eval(self.tree.body, np.asarray(x, dtype=np.int64) % p, np.asarray(y, dtype=np.int64) % p, p, ok)
        return np.broadcast_to(np.asarray(z, dtype=np.int64) % p, ok.shape).copy(), ok

    def monomial(self) -> tuple[int, int] | None:
        """``(a, b)`` when the formula is ``x^a * y^b`` (a constant factor allowed, ``/`` as ``y^-1``), else None:
        such operations are additions of discrete logarithms (multiplicative Fourier analysis applies)."""
        return _monomial(self.tree.body)


def _where(node: ast.AST, source: str) -> str:
    """The part of the formula a node spans, as written (``^`` for a power)."""
    return (ast.get_source_segment(source, node) or ast.unparse(node)).replace("**", "^")


def parse(text: str) -> Expression:
    """Parse and check ``text`` (ConfigError naming the offending part)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("expression is empty; give a formula in x and y, e.g. --expression \"x^2 + x*y\"")
    if len(text) > MAX_LENGTH:
        raise ConfigError(f"expression is {len(text)} characters long; at most {MAX_LENGTH}")
    source = text.replace("^", "**")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        # the parser counts columns from 1 and says 0 where the formula ends too soon ("x+")
        where = f"at column {e.offset}" if e.offset else f"at its end (column {len(text.strip()) + 1})"
        raise ConfigError(f"expression {text!r} is not a formula: {e.msg} {where}") from None
    divides = _check(tree.body, text, source.strip())
    canonical = ast.unparse(tree).replace(" ** ", "^").replace("**", "^")
    return Expression(canonical, tree, divides)


def _check(node: ast.AST, text: str, src: str) -> bool:
    """Raise ConfigError at the first node outside the whitelist; returns whether there is a division."""
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _OPS:
            raise ConfigError(f"expression {text!r}: operator in {_where(node, src)!r} is not allowed; "
                              "allowed: + - * / ^ and parentheses")
        if isinstance(node.op, ast.Pow):
            exponent = _constant(node.right, text, src)
            if exponent < 0 or exponent > MAX_EXPONENT:
                raise ConfigError(f"expression {text!r}: exponent {exponent} in {_where(node, src)!r} must be between 0 "
                                  f"and {MAX_EXPONENT} (for an inverse, divide)")
            return _check(node.left, text, src)
        return isinstance(node.op, ast.Div) | _check(node.left, text, src) | _check(node.right, text, src)
    if isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ConfigError(f"expression {text!r}: {_where(node, src)!r} is not allowed; allowed: + - * / ^")
        return _check(node.operand, text, src)
    if isinstance(node, ast.Name):
        if node.id not in ("x", "y"):
            raise ConfigError(f"expression {text!r}: name {node.id!r} is not allowed; the operands are x and y")
        return False
    if isinstance(node, ast.Constant):
        if not isinstance(node.value, int) or isinstance(node.value, bool):
            raise ConfigError(f"expression {text!r}: constant {_where(node, src)!r} is not allowed; use integers")
        return False
    raise ConfigError(f"expression {text!r}: {_where(node, src)!r} is not allowed; allowed: x, y, integers, "
                      "+ - * / ^ and parentheses")


def _constant(node: ast.AST, text: str, src: str = "") -> int:
    """An exponent: an integer made of constants only (``2``, ``(1 + 2)``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _constant(node.operand, text, src)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult)):
        a, b = _constant(node.left, text, src), _constant(node.right, text, src)
        return a + b if isinstance(node.op, ast.Add) else a - b if isinstance(node.op, ast.Sub) else a * b
    raise ConfigError(f"expression {text!r}: exponent {_where(node, src)!r} must be a constant integer "
                      "(x^y has no meaning mod p)")


def _power(base: np.ndarray, e: int, p: int) -> np.ndarray:
    out = np.ones_like(base) % p
    b = base % p
    while e:
        if e & 1:
            out = out * b % p
        b = b * b % p
        e >>= 1
    return out


def _inverse(v: np.ndarray, p: int) -> np.ndarray:
    """Modular inverses (p prime); 0 where v = 0 (those pairs are marked undefined by the caller)."""
    return _power(v, p - 2, p)


def _eval(node: ast.AST, x: np.ndarray, y: np.ndarray, p: int, ok: np.ndarray):
    if isinstance(node, ast.Name):
        return x if node.id == "x" else y
    if isinstance(node, ast.Constant):
        return np.int64(node.value % p)
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, x, y, p, ok)
        return (-v) % p if isinstance(node.op, ast.USub) else v
    if isinstance(node.op, ast.Pow):
        return _power(np.asarray(_eval(node.left, x, y, p, ok)), _constant(node.right, ""), p)
    a, b = _eval(node.left, x, y, p, ok), _eval(node.right, x, y, p, ok)
    if isinstance(node.op, ast.Add):
        return (a + b) % p
    if isinstance(node.op, ast.Sub):
        return (a - b) % p
    if isinstance(node.op, ast.Mult):
        return a * b % p
    b = np.asarray(b)
    ok &= np.broadcast_to(b % p != 0, ok.shape)
    return a * _inverse(b, p) % p


def _monomial(node: ast.AST) -> tuple[int, int] | None:
    if isinstance(node, ast.Name):
        return (1, 0) if node.id == "x" else (0, 1)
    if isinstance(node, ast.Constant):
        return (0, 0) if node.value % 1 == 0 and node.value != 0 else None
    if isinstance(node, ast.UnaryOp):
        return _monomial(node.operand)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Pow):
            base = _monomial(node.left)
            e = _constant(node.right, "")
            return None if base is None else (base[0] * e, base[1] * e)
        if isinstance(node.op, (ast.Mult, ast.Div)):
            a, b = _monomial(node.left), _monomial(node.right)
            if a is None or b is None:
                return None
            s = 1 if isinstance(node.op, ast.Mult) else -1
            return a[0] + s * b[0], a[1] + s * b[1]
    return None
