"""`FlatBuffer`: the parameters of one group (one dtype) laid end to end in
flat arrays, so that an elementwise update over all of them is a handful of
large NumPy operations instead of a dozen small ones per parameter.

    flat = FlatBuffer(params, slots=("exp_avg", "exp_avg_sq"), scratch=2)
    flat.gather()                     # flat.grad[...] <- every p.grad, flat.param[...] <- every p.data
    ... update flat.param from flat.grad and flat.slots["exp_avg"], ... (whole arrays)
    flat.scatter()                    # every p.data <- its part of flat.param (in place)

Layout: parameter i owns elements offsets[i]:offsets[i + 1] of every flat
array, in the order of `params`. The optimizer state of parameter i (one
array per slot name) is a view of its part of that slot's flat array:
`flat.views[name][i]` has the parameter's shape, so `state_dict()` and a
per-parameter update see the same memory the flat update writes.

The parameters' own arrays are not moved: `gather` copies their values and
gradients in and `scatter` copies the new values back, so `param.data` stays
the array it was (anything holding it sees the update, as with a
per-parameter loop). The copies cost three passes over the parameters; the
update they replace costs about a dozen NumPy calls per parameter, which for
a model of many small tensors is mostly call overhead
(benchmarks/results/gpt_step.md times the step).
"""
import numpy as np


class FlatBuffer:
    def __init__(self, params, slots, scratch=0):
        self.params = tuple(params)
        self.dtype = self.params[0].dtype
        sizes = [p.data.size for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)   # (n + 1,)
        total = int(self.offsets[-1])
        self.param = np.empty(total, self.dtype)                 # values, gathered each step
        self.grad = np.empty(total, self.dtype)                  # gradients, gathered each step
        self.slots = {name: np.zeros(total, self.dtype) for name in slots}   # optimizer state
        self.scratch = [np.empty(total, self.dtype) for _ in range(scratch)]  # reused by every step
        self._param_views = self._views_of(self.param)
        self._grad_views = self._views_of(self.grad)
        self.views = {name: self._views_of(flat) for name, flat in self.slots.items()}

    def _views_of(self, flat):
        """Parameter i's part of `flat`, shaped like parameter i."""
        return [flat[a:b].reshape(p.shape)
                for p, a, b in zip(self.params, self.offsets[:-1], self.offsets[1:])]

    def holds(self, params):
        """True if `params` are exactly this buffer's parameters, in order."""
        return len(params) == len(self.params) and all(a is b for a, b in zip(params, self.params))

    def gather(self):
        """Copy every parameter's value and gradient into `param` and `grad`."""
        for p, value, grad in zip(self.params, self._param_views, self._grad_views):
            np.copyto(value, p.data)
            np.copyto(grad, p.grad, casting="same_kind")         # a float64 gradient of a float32 parameter is cast

    def scatter(self):
        """Copy `param` back into every parameter's own array, in place."""
        for p, value in zip(self.params, self._param_views):
            np.copyto(p.data, value)
