"""`Tensor`: an ndarray that remembers how it was made, so gradients can flow back.

    x = mdl.tensor([[1.0, 2.0]], requires_grad=True)   # a leaf, float32
    y = (x * x).sum()                                   # y.grad_fn is a Sum op
    y.backward()                                        # x.grad == [[2., 4.]]

A Tensor holds:
- `data`: the ndarray with the values (float32 by default, float64 kept);
- `requires_grad`: whether gradients should flow to it;
- `grad_fn`: the `Function` that produced it (None for leaves);
- `grad`: for leaves, an ndarray that `backward()` adds into (None until then).

Every arithmetic operator and method below is a thin call to an op in
`minidl.ops`; the ops do the work, the Tensor is the handle.

In-place operations: minidl has none on tensors that take part in a graph.
`x += 1` rebinds `x` to a new tensor (like `x = x + 1`), which keeps the graph
correct. The only in-place changes are to `.data` and `.grad` directly, which
is what optimizers do to parameters (outside the graph, under `no_grad`).
Changing `.data` of a tensor that an op saved for backward makes that
backward wrong, exactly as it would in NumPy code: do not.
"""
import numpy as np

from . import engine, grad_mode

FLOAT_DTYPES = (np.float16, np.float32, np.float64)


def _to_array(data, dtype=None):
    """Convert user data to an ndarray following PyTorch's rules: ndarrays and
    NumPy scalars keep their dtype; Python floats (and lists of them) become
    float32; Python ints become int64; bools stay bool."""
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, (np.ndarray, np.generic)):
        array = np.array(data, dtype=dtype)         # a copy: the tensor owns it
    else:
        array = np.array(data)
        if dtype is not None:
            array = array.astype(dtype)
        elif array.dtype == np.float64:
            array = array.astype(np.float32)        # Python floats -> float32
        elif array.dtype.kind == "i":
            array = array.astype(np.int64)
    if array.dtype == object or array.dtype.kind in "USO":
        raise TypeError(f"tensor: cannot make a tensor from data of dtype {array.dtype}")
    return array


class Tensor:
    """An n-dimensional array with a gradient. See the module docstring."""

    __array_ufunc__ = None      # make NumPy defer: np.float64(2) * t calls t.__rmul__
    __hash__ = object.__hash__  # == is elementwise, so hash by identity

    def __init__(self, data, requires_grad=False, dtype=None):
        self.data = _to_array(data, dtype)
        self.grad = None
        self.grad_fn = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_array(cls, array):
        """Wrap an ndarray without copying it (the result of an op, no graph)."""
        tensor = cls.__new__(cls)
        tensor.data = array
        tensor.grad = None
        tensor.grad_fn = None
        tensor.requires_grad = False
        return tensor

    @classmethod
    def _from_op(cls, array, function):
        """Wrap the output of `function` (used by Function.apply)."""
        tensor = cls.__new__(cls)
        tensor.data = array
        tensor.grad = None
        tensor.grad_fn = function
        tensor.requires_grad = True
        return tensor

    # ---- basic properties ------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def is_leaf(self):
        return self.grad_fn is None

    @property
    def T(self):
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim=None):
        return self.shape if dim is None else self.shape[dim]

    def dim(self):
        return self.ndim

    def numel(self):
        return self.data.size

    def __len__(self):
        return len(self.data)

    def __bool__(self):
        """`if t:` works for one value only (as in PyTorch): without this, every
        Tensor would count as True, and `x == y` inside `if` or `in` would lie."""
        if self.data.size != 1:
            raise RuntimeError(
                f"bool: a tensor of shape {self.shape} has {self.data.size} values, so its truth "
                "is ambiguous; use t.data.all() or t.data.any(), or `t is None` to test for a missing tensor"
            )
        return bool(self.data)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = "" if self.dtype == np.float32 else f", dtype={self.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn=<{self.grad_fn.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ---- autograd --------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
        """Accumulate the gradient of this tensor into every leaf's `.grad`."""
        engine.backward(self, gradient, retain_graph)

    def requires_grad_(self, requires_grad=True):
        if requires_grad and self.data.dtype.type not in FLOAT_DTYPES:
            raise TypeError(
                f"requires_grad: only floating-point tensors can require gradients, "
                f"got dtype {self.dtype}"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError("requires_grad_: cannot turn it off on a non-leaf; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    def retain_grad(self):
        """Also fill `.grad` of this intermediate (non-leaf) tensor on backward."""
        if self.grad_fn is not None:
            self.grad_fn.output_retains_grad = self
        return self

    def _accumulate(self, gradient, owned=False):
        """Add `gradient` into `.grad`. `.grad` never shares memory with an
        array anyone else holds: the first gradient is copied unless `owned`
        (the engine passes True for an array nothing else refers to)."""
        converted = gradient
        if type(gradient) is not np.ndarray or gradient.dtype != self.dtype:
            # (asarray would also wrap an array of an equal but distinct dtype
            # object, as a Numba kernel's array can have, in a new view)
            converted = np.asarray(gradient, dtype=self.dtype)
        if self.grad is not None:
            self.grad = self.grad + converted               # a new array
        elif owned or (converted is not gradient and converted.base is None):
            self.grad = converted                           # ours alone, or a fresh conversion
        else:
            self.grad = converted.copy()

    def zero_grad(self):
        self.grad = None

    def detach(self):
        """The same values, cut from the graph (shares memory, like PyTorch)."""
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out.grad_fn, out.requires_grad = self.data, None, None, False
        return out

    def numpy(self):
        if self.requires_grad:
            raise RuntimeError("numpy: call .detach().numpy() on a tensor that requires grad")
        return self.data

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item: only one-element tensors convert to a number, got shape {self.shape}")
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def astype(self, dtype):
        return ops.cast(self, dtype)

    def float(self):
        return self.astype(np.float32)

    def double(self):
        return self.astype(np.float64)

    # ---- operators -------------------------------------------------------
    def _lift(self, other):
        """Turn a Python/NumPy scalar into a tensor of this tensor's float dtype."""
        if isinstance(other, Tensor):
            return other
        if np.isscalar(other) and self.data.dtype.type in FLOAT_DTYPES:
            return Tensor(np.asarray(other, dtype=self.dtype))
        return Tensor(other)

    def __add__(self, other): return ops.add(self, self._lift(other))
    def __radd__(self, other): return ops.add(self._lift(other), self)
    def __sub__(self, other): return ops.sub(self, self._lift(other))
    def __rsub__(self, other): return ops.sub(self._lift(other), self)
    def __mul__(self, other): return ops.mul(self, self._lift(other))
    def __rmul__(self, other): return ops.mul(self._lift(other), self)
    def __truediv__(self, other): return ops.div(self, self._lift(other))
    def __rtruediv__(self, other): return ops.div(self._lift(other), self)
    def __pow__(self, other): return ops.pow(self, other if isinstance(other, Tensor) else other)
    def __rpow__(self, other): return ops.pow(self._lift(other), self)
    def __matmul__(self, other): return ops.matmul(self, self._lift(other))
    def __rmatmul__(self, other): return ops.matmul(self._lift(other), self)
    def __neg__(self): return ops.neg(self)
    def __abs__(self): return ops.abs(self)
    def __getitem__(self, index): return ops.getitem(self, index)

    def __lt__(self, other): return ops.lt(self, self._lift(other))
    def __le__(self, other): return ops.le(self, self._lift(other))
    def __gt__(self, other): return ops.gt(self, self._lift(other))
    def __ge__(self, other): return ops.ge(self, self._lift(other))
    def __eq__(self, other): return ops.eq(self, self._lift(other))
    def __ne__(self, other): return ops.ne(self, self._lift(other))

    # ---- methods (PyTorch names) ---------------------------------------------
    def matmul(self, other): return ops.matmul(self, self._lift(other))
    def pow(self, exponent): return self.__pow__(exponent)
    def exp(self): return ops.exp(self)
    def log(self): return ops.log(self)
    def sqrt(self): return ops.sqrt(self)
    def abs(self): return ops.abs(self)
    def tanh(self): return ops.tanh(self)
    def sigmoid(self): return ops.sigmoid(self)
    def relu(self): return ops.relu(self)
    def clamp(self, min=None, max=None): return ops.clamp(self, min=min, max=max)

    def sum(self, dim=None, keepdim=False): return ops.sum(self, dim=dim, keepdim=keepdim)
    def mean(self, dim=None, keepdim=False): return ops.mean(self, dim=dim, keepdim=keepdim)
    def var(self, dim=None, unbiased=True, keepdim=False):
        return ops.var(self, dim=dim, unbiased=unbiased, keepdim=keepdim)
    def max(self, dim=None, keepdim=False): return ops.max(self, dim=dim, keepdim=keepdim)
    def min(self, dim=None, keepdim=False): return ops.min(self, dim=dim, keepdim=keepdim)
    def logsumexp(self, dim, keepdim=False): return ops.logsumexp(self, dim=dim, keepdim=keepdim)
    def softmax(self, dim): return ops.softmax(self, dim=dim)
    def log_softmax(self, dim): return ops.log_softmax(self, dim=dim)
    def argmax(self, dim=None, keepdim=False):
        return Tensor(np.argmax(self.data, axis=dim, keepdims=keepdim))

    def reshape(self, *shape): return ops.reshape(self, *shape)
    def view(self, *shape): return ops.reshape(self, *shape)
    def transpose(self, dim0, dim1): return ops.transpose(self, dim0, dim1)
    def permute(self, *dims): return ops.permute(self, *dims)
    def flatten(self, start_dim=0, end_dim=-1): return ops.flatten(self, start_dim, end_dim)
    def squeeze(self, dim=None): return ops.squeeze(self, dim)
    def unsqueeze(self, dim): return ops.unsqueeze(self, dim)
    def expand(self, *shape): return ops.expand(self, *shape)
    def masked_fill(self, mask, value): return ops.masked_fill(self, mask, value)
    def split(self, split_size_or_sections, dim=0):
        return ops.split(self, split_size_or_sections, dim)
    def chunk(self, chunks, dim=0): return ops.chunk(self, chunks, dim)
    def amax(self, dim=None, keepdim=False): return ops.amax(self, dim=dim, keepdim=keepdim)
    def amin(self, dim=None, keepdim=False): return ops.amin(self, dim=dim, keepdim=keepdim)
    def argmin(self, dim=None, keepdim=False):
        return Tensor(np.argmin(self.data, axis=dim, keepdims=keepdim))
    def clip(self, min=None, max=None): return ops.clamp(self, min=min, max=max)
    def maximum(self, other): return ops.maximum(self, other)
    def minimum(self, other): return ops.minimum(self, other)
    def contiguous(self):
        """Kept for PyTorch code (`x.transpose(1, 2).contiguous().view(...)`):
        minidl's reshape copies when it must, so this returns the tensor itself."""
        return self


def tensor(data, requires_grad=False, dtype=None):
    """Make a new leaf tensor (a copy of `data`)."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def as_tensor(data):
    """Return `data` if it is already a Tensor, else wrap it (used by ops)."""
    return data if isinstance(data, Tensor) else Tensor(data)


from .. import ops  # noqa: E402  (ops need Tensor defined first)
