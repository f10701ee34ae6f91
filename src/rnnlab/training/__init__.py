"""The training machinery: one loop and one run folder for every task.

::

    task        the contract a task implements (Task, Feed): all the loop knows of it
    loop        train(run): steps, clipping, divergence stop, budgets, schedules,
                evaluation and the best checkpoint, health figures, progress bar, signals
    run         Run: create or resume a run; its model, optimizer and checkpoints
    folder      RunFolder: the files of a run folder, every write (and its failure) there
    lock        the run folder's lock: one training process per folder
    signals     SIGTERM and Ctrl-C: save, then stop
    progress    where training stands (in every checkpoint)
    config      TrainConfig: every setting of a run (each a train flag)
    checkpoint  the .npz + .json format, written atomically
    validate    every check of a run folder's files before anything uses them
    plot        loss.png
    ranks       which of K processes this is (MPI, noticed from the launcher's variables)
    allreduce   a data-parallel step's one all-reduce of gradients, loss, count, stop flag
"""

from rnnlab.training.config import TrainConfig
from rnnlab.training.loop import train
from rnnlab.training.run import Run

__all__ = ["Run", "TrainConfig", "train"]
