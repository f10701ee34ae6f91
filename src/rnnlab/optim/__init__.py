"""First-order optimizers with exactly ``torch.optim``'s update rules, and gradient clipping.

``step()`` updates every ``p.value`` in place from ``p.grad`` and never zeroes the gradients.
``lr`` is a plain float that a schedule may change between steps. Weight decay λ is L2 as in
torch: the update sees ``g = p.grad + λ·θ`` (except AdamW, which shrinks ``θ`` directly).
Checkpoint state is plain data, never pickled: arrays keyed ``"<param name>.<buffer>"`` plus
JSON-serialisable meta. :data:`OPTIMIZERS` maps each ``--optimizer`` name to its class.

>>> import numpy as np
>>> from rnnlab.nn import Parameter
>>> w = Parameter(np.array([1.0, -2.0]))
>>> opt = OPTIMIZERS["sgd"]({"w": w}, lr=0.1)
>>> w.grad[...] = [10.0, 0.0]
>>> opt.step()
>>> w.value
array([ 0., -2.])
"""

from rnnlab.optim.adaptive import Adagrad, Adam, RMSprop
from rnnlab.optim.base import Optimizer, Params
from rnnlab.optim.clip import clip_and_read, clip_grad_norm, grad_norm
from rnnlab.optim.sgd import SGD

OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "adagrad": Adagrad,
                                          "rmsprop": RMSprop}

__all__ = ["OPTIMIZERS", "SGD", "Adagrad", "Adam", "Optimizer", "Params", "RMSprop",
           "clip_and_read", "clip_grad_norm", "grad_norm"]
