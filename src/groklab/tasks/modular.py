"""The paper's ten operations on residues mod p (Power et al. 2022, appendix A.1.1): ``x op y = z`` for every pair of
residues (``div`` and ``div_odd_sub``: y from 1, p prime).

    >>> ADD.fn(np.array([3]), np.array([5]), 7).tolist()
    [1]
"""

from __future__ import annotations

from ..lazy import lazy
from .spec import Task

np = lazy("numpy")


def inverse_mod(y: np.ndarray, p: int) -> np.ndarray:
    """Modular inverses of the nonzero residues ``y`` (p prime)."""
    table = np.array([0] + [pow(v, -1, p) for v in range(1, p)], dtype=np.int64)
    return table[y]


def _div(x, y, p):
    return x * inverse_mod(y, p) % p


def _div_odd_sub(x, y, p):
    return np.where(y % 2 == 1, x * inverse_mod(y, p) % p, (x - y) % p)


ADD = Task("add", "x + y mod p", True, fn=lambda x, y, p: (x + y) % p, linear=lambda params: (1, 1))
SUB = Task("sub", "x - y mod p", True, fn=lambda x, y, p: (x - y) % p, linear=lambda params: (1, -1))
MUL = Task("mul", "x * y mod p", True, fn=lambda x, y, p: (x * y) % p, monomial=lambda params: (1, 1))
DIV = Task("div", "x / y mod p", True, needs_prime=True, y_nonzero=True, fn=_div, monomial=lambda params: (1, -1))
DIV_ODD_SUB = Task("div_odd_sub", "x / y if y is odd, else x - y (mod p)", True, needs_prime=True, y_nonzero=True,
                   fn=_div_odd_sub)
X2_Y2 = Task("x2_y2", "x^2 + y^2 mod p", True, fn=lambda x, y, p: (x * x + y * y) % p)
X2_XY_Y2 = Task("x2_xy_y2", "x^2 + xy + y^2 mod p", True, fn=lambda x, y, p: (x * x + x * y + y * y) % p)
X2_XY_Y2_X = Task("x2_xy_y2_x", "x^2 + xy + y^2 + x mod p", True,
                  fn=lambda x, y, p: (x * x + x * y + y * y + x) % p)
X3_XY = Task("x3_xy", "x^3 + xy mod p", True, fn=lambda x, y, p: (x * x % p * x + x * y) % p)
X3_XY2_Y = Task("x3_xy2_y", "x^3 + xy^2 + y mod p", True,
                fn=lambda x, y, p: (x * x % p * x + x * (y * y % p) + y) % p)
