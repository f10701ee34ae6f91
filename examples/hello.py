"""The character model of the classic lecture slide: a vanilla RNN learns "hello".

Vocabulary h, e, l, o, one-hot inputs. Fed "hell", the model must predict "ello": after
'h' comes 'e', after 'e' comes 'l', after the first 'l' another 'l', after the second
'l' an 'o'. The same input 'l' needs two different answers, so only the hidden state
(what came before) can tell them apart. The script prints, for every step, the predicted
distribution over the next character before and after training.

    python examples/hello.py
"""

import numpy as np

import rnnlab
from rnnlab.optim import Adam

VOCAB = ["h", "e", "l", "o"]
rng = np.random.default_rng(0)

# --8<-- [start:model] (docs/tutorial/hello.md shows these lines)
rnn = rnnlab.RNN(4, 8, rng=rng)  # 4 inputs (one-hot), 8 hidden units, tanh
head = rnnlab.Linear(8, 4, rng=rng)  # hidden state -> scores of the 4 characters
loss_fn = rnnlab.SoftmaxCrossEntropy()
# --8<-- [end:model]

ids = np.array([VOCAB.index(c) for c in "hello"])
x = np.eye(4, dtype=np.float32)[ids[:-1]][:, None, :]  # (T=4, N=1, 4) one-hot "hell"
targets = ids[1:][:, None]  # (T=4, N=1): "ello"


def show(title: str) -> None:
    y, _ = rnn.forward(x)  # (4, 1, 8) hidden states
    scores = head.forward(y)  # (4, 1, 4)
    p = np.exp(scores - scores.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)  # softmax over the 4 characters
    print(title)
    print("  input   " + "  ".join(f"P({c})" for c in VOCAB) + "   predicted  wanted")
    for t in range(4):
        probs = "  ".join(f"{v:.2f}" for v in p[t, 0])
        print(f"    {'hell'[t]}     {probs}       {VOCAB[int(p[t, 0].argmax())]}        "
              f"{'ello'[t]}")


show("before training")
params = {**{f"rnn.{k}": v for k, v in rnn.named_params().items()},
          **{f"head.{k}": v for k, v in head.named_params().items()}}
opt = Adam(params, lr=0.05)
# --8<-- [start:train]
for step in range(100):
    y, _ = rnn.forward(x)
    loss = loss_fn.forward(head.forward(y), targets)
    rnn.zero_grad()
    head.zero_grad()
    rnn.backward(head.backward(loss_fn.backward()))  # dloss -> dscores -> dy -> weights
    opt.step()
    if step % 20 == 0:
        print(f"step {step:3d}  loss {loss:.4f}")
# --8<-- [end:train]
show(f"after training (loss {loss:.4f})")
