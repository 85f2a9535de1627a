"""Independent float64 references for the kernel families, for tests.

Nothing here shares code with minidl: convolution goes through
`scipy.signal.correlate` / `convolve` one plane at a time, pooling through
NumPy slices over the window offsets, softmax through `scipy.special`, and
attention through the textbook formulas with the full (L, S) matrix. Every
function takes and returns float64 arrays (inputs are cast first).

Shapes follow PyTorch: conv2d weight (Cout, Cin/groups, kH, kW),
conv_transpose2d weight (Cin, Cout/groups, kH, kW), NCHW images,
attention q (..., L, E), k (..., S, E), v (..., S, Ev).
"""
import numpy as np
from scipy import signal, special


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


def _pad(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _spread(kernel, dilation):
    """Insert dilation - 1 zeros between neighbouring entries of the last two axes."""
    dh, dw = dilation
    kh, kw = kernel.shape[-2:]
    out = np.zeros(kernel.shape[:-2] + ((kh - 1) * dh + 1, (kw - 1) * dw + 1))
    out[..., ::dh, ::dw] = kernel
    return out


# ---- conv2d: out[n, o] = sum_c correlate(x_pad[n, g*Cg + c], W[o, c]) [::s, ::s] ----
def conv2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    x, weight = _f64(x, weight)
    xp = _pad(x, padding)
    n, c_in = x.shape[:2]
    c_out, cg = weight.shape[:2]
    cog = c_out // groups
    kernel = _spread(weight, dilation)                    # (Cout, Cg, kH', kW')
    planes = []
    for s in range(n):
        rows = []
        for o in range(c_out):
            g = o // cog
            acc = sum(signal.correlate(xp[s, g * cg + c], kernel[o, c], mode="valid") for c in range(cg))
            rows.append(acc[::stride[0], ::stride[1]])
        planes.append(rows)
    out = np.array(planes)                                # (N, Cout, Ho, Wo)
    if bias is not None:
        out += np.asarray(bias, np.float64).reshape(1, -1, 1, 1)
    return out


def conv2d_grads(x, weight, grad_out, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    """(dL/dx, dL/dW, dL/dbias) of conv2d for the output gradient grad_out."""
    x, weight, grad_out = _f64(x, weight, grad_out)
    xp = _pad(x, padding)
    n, c_in, hp, wp = xp.shape
    c_out, cg, kh, kw = weight.shape
    cog = c_out // groups
    sh, sw = stride
    kernel = _spread(weight, dilation)                    # (Cout, Cg, kH', kW')
    ho, wo = grad_out.shape[2:]
    gy = np.zeros((n, c_out, (ho - 1) * sh + 1, (wo - 1) * sw + 1))
    gy[:, :, ::sh, ::sw] = grad_out                       # output gradient on the input's grid
    dxp = np.zeros_like(xp)
    d_kernel = np.zeros_like(kernel)
    for s in range(n):
        for o in range(c_out):
            g = o // cog
            for c in range(cg):
                # x_pad[y*s + i] * W[i] feeds out[y]: so dx_pad = sum_o convolve(gy, W) ("full")
                full = signal.convolve(gy[s, o], kernel[o, c], mode="full")
                dxp[s, g * cg + c, :full.shape[0], :full.shape[1]] += full
                # dW[i, j] = sum_y gy[y] x_pad[y*s + i]: a correlation of x_pad with gy
                d_kernel[o, c] += signal.correlate(xp[s, g * cg + c], gy[s, o], mode="valid")[
                    :kernel.shape[2], :kernel.shape[3]]
    ph, pw = padding
    dx = dxp[:, :, ph:hp - ph, pw:wp - pw]
    d_weight = d_kernel[:, :, ::dilation[0], ::dilation[1]]
    return dx, d_weight, grad_out.sum(axis=(0, 2, 3))


# ---- conv_transpose2d: the adjoint of conv2d ---------------------------------------
def conv_transpose2d(x, weight, bias=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), groups=1):
    """Scatter form: out_full[n, g*cog + o, y*s + i, x*s + j] += x[n, c, y, x] W[c, o, i, j],
    then crop `padding` from each side (output_padding extends the bottom/right)."""
    x, weight = _f64(x, weight)
    n, c_in, h, w = x.shape
    _, cog, kh, kw = weight.shape
    cig = c_in // groups
    sh, sw = stride
    xs = np.zeros((n, c_in, (h - 1) * sh + 1, (w - 1) * sw + 1))
    xs[:, :, ::sh, ::sw] = x
    full = np.zeros((n, cog * groups, xs.shape[2] + kh - 1 + output_padding[0],
                     xs.shape[3] + kw - 1 + output_padding[1]))
    for s in range(n):
        for c in range(c_in):
            g = c // cig
            for o in range(cog):
                block = signal.convolve(xs[s, c], weight[c, o], mode="full")
                full[s, g * cog + o, :block.shape[0], :block.shape[1]] += block
    ph, pw = padding
    out = full[:, :, ph:full.shape[2] - ph, pw:full.shape[3] - pw]
    if bias is not None:
        out = out + np.asarray(bias, np.float64).reshape(1, -1, 1, 1)
    return out


def conv_transpose2d_grads(x, weight, grad_out, stride=(1, 1), padding=(0, 0), groups=1):
    """(dL/dx, dL/dW, dL/dbias) of conv_transpose2d: dx = conv2d(grad_out, W);
    dW[c, o, i, j] = sum_{n, y, x} x[n, c, y, x] grad_out_pad[n, o, y*s + i, x*s + j]."""
    x, weight, grad_out = _f64(x, weight, grad_out)
    n, c_in, h, w = x.shape
    _, cog, kh, kw = weight.shape
    cig = c_in // groups
    dx = conv2d(grad_out, weight, stride=stride, padding=padding, groups=groups)[:, :, :h, :w]
    gp = _pad(grad_out, padding)
    xs = np.zeros((n, c_in, (h - 1) * stride[0] + 1, (w - 1) * stride[1] + 1))
    xs[:, :, ::stride[0], ::stride[1]] = x
    d_weight = np.zeros_like(weight)
    for s in range(n):
        for c in range(c_in):
            g = c // cig
            for o in range(cog):
                d_weight[c, o] += signal.correlate(gp[s, g * cog + o], xs[s, c], mode="valid")[:kh, :kw]
    return dx, d_weight, grad_out.sum(axis=(0, 2, 3))


# ---- pooling: loops over the kH*kW window offsets, vectorised over everything else --
def _windows(x, kernel_size, stride, padding, fill):
    """(offsets, out_hw, padded): padded[..., i + s*oy, j + s*ox] for each offset (i, j)."""
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    n, c, h, w = x.shape
    padded = np.full((n, c, h + 2 * ph, w + 2 * pw), fill)
    padded[:, :, ph:ph + h, pw:pw + w] = x
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    views = [(i, j, padded[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw])
             for i in range(kh) for j in range(kw)]
    return views, padded


def max_pool2d(x, kernel_size, stride, padding):
    (x,) = _f64(x)
    views, _ = _windows(x, kernel_size, stride, padding, -np.inf)
    return np.max([v for _, _, v in views], axis=0)


def max_pool2d_grad(x, grad_out, kernel_size, stride, padding):
    """Each window's gradient goes to its first maximum in scan order."""
    x, grad_out = _f64(x, grad_out)
    views, padded = _windows(x, kernel_size, stride, padding, -np.inf)
    winner = np.argmax([v for _, _, v in views], axis=0)  # (N, C, OH, OW) offset index
    grad = np.zeros_like(padded)
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = grad_out.shape[2:]
    for index, (i, j, _) in enumerate(views):
        grad[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw] += grad_out * (winner == index)
    return grad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


def avg_pool2d(x, kernel_size, stride, padding):
    """count_include_pad=True: every window divides by kH*kW."""
    (x,) = _f64(x)
    views, _ = _windows(x, kernel_size, stride, padding, 0.0)
    return np.sum([v for _, _, v in views], axis=0) / (kernel_size[0] * kernel_size[1])


def avg_pool2d_grad(x, grad_out, kernel_size, stride, padding):
    x, grad_out = _f64(x, grad_out)
    views, padded = _windows(x, kernel_size, stride, padding, 0.0)
    grad = np.zeros_like(padded)
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = grad_out.shape[2:]
    share = grad_out / (kernel_size[0] * kernel_size[1])
    for i, j, _ in views:
        grad[:, :, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw] += share
    return grad[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]


# ---- softmax over the last axis ------------------------------------------------------
def softmax(x, log=False):
    (x,) = _f64(x)
    return special.log_softmax(x, axis=-1) if log else special.softmax(x, axis=-1)


def softmax_grad(x, grad_out, log=False):
    """softmax: dx = y * (g - <g, y>); log_softmax: dx = g - softmax(x) * sum(g)."""
    x, grad_out = _f64(x, grad_out)
    y = special.softmax(x, axis=-1)
    if log:
        return grad_out - y * grad_out.sum(axis=-1, keepdims=True)
    return y * (grad_out - (grad_out * y).sum(axis=-1, keepdims=True))


# ---- gelu (exact, erf form) ----------------------------------------------------------
def gelu(x):
    (x,) = _f64(x)
    return 0.5 * x * (1.0 + special.erf(x / np.sqrt(2.0)))


def gelu_grad(x, grad_out):
    """d/dx x Phi(x) = Phi(x) + x phi(x)."""
    x, grad_out = _f64(x, grad_out)
    cdf = 0.5 * (1.0 + special.erf(x / np.sqrt(2.0)))
    pdf = np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)
    return grad_out * (cdf + x * pdf)


# ---- scaled dot-product attention with the full (L, S) matrix ------------------------
def attention_bias(mask, causal, L, S):
    """The additive (…, L, S) bias: a bool mask (True = may attend) becomes 0 / -inf,
    a float mask is used as it is, causal adds -inf above the diagonal."""
    bias = np.zeros((L, S))
    if mask is not None:
        mask = np.asarray(mask)
        bias = np.where(mask, 0.0, -np.inf) if mask.dtype == np.bool_ else mask.astype(np.float64)
    if causal:
        bias = bias + np.where(np.tril(np.ones((L, S), bool)), 0.0, -np.inf)
    return bias


def attention(q, k, v, mask=None, causal=False):
    """(out, P): out = P v with P = softmax(q k^T / sqrt(E) + bias)."""
    q, k, v = _f64(q, k, v)
    L, S = q.shape[-2], k.shape[-2]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1]) + attention_bias(mask, causal, L, S)
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    weights /= weights.sum(axis=-1, keepdims=True)
    return weights @ v, weights


def attention_grads(q, k, v, grad_out, mask=None, causal=False):
    """Analytic backward of softmax attention, in float64:
        dV = P^T dO,  dP = dO V^T,  dZ = P * (dP - rowsum(dP * P)),
        dQ = dZ K / sqrt(E),  dK = dZ^T Q / sqrt(E)."""
    q, k, v, grad_out = _f64(q, k, v, grad_out)
    _, weights = attention(q, k, v, mask, causal)
    scale = 1.0 / np.sqrt(q.shape[-1])
    d_v = np.swapaxes(weights, -1, -2) @ grad_out
    d_weights = grad_out @ np.swapaxes(v, -1, -2)
    d_scores = weights * (d_weights - (d_weights * weights).sum(axis=-1, keepdims=True))
    d_q = d_scores @ k * scale
    d_k = np.swapaxes(d_scores, -1, -2) @ q * scale
    return d_q, d_k, d_v
