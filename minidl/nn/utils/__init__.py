"""nn.utils: helpers around layers and their gradients (PyTorch's torch.nn.utils).

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    optimizer.step()
"""
from .clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
