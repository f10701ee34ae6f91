"""First-order optimizers with exactly ``torch.optim``'s update rules, and gradient clipping.

``step()`` updates every ``p.value`` in place from ``p.grad`` and never zeroes the gradients.
``lr`` is a plain float that a schedule may change between steps. Weight decay λ is L2 as in
torch: the update sees ``g = p.grad + λ·θ`` (except AdamW, which shrinks ``θ`` directly).
Checkpoint state is plain data, never pickled: arrays keyed ``"<param name>.<buffer>"`` plus
JSON-serialisable meta.
"""


from rnnlab.optim.adaptive import Adagrad, Adam, RMSprop
from rnnlab.optim.base import Optimizer, Params
from rnnlab.optim.clip import clip_grad_norm
from rnnlab.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "Optimizer", "Params", "RMSprop", "clip_grad_norm"]
