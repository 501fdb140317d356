"""Code text shared by the /layers, /batches, /overfit and lab-scratch exporters.

Each constant is a piece of a plain PyTorch script, written to do what the core does in
the same order (``dltl_core.data.digits``, ``dltl_core.data.split``, ``dltl_core.train.fit``
on the CPU), so a seeded run of the script prints the numbers the page computes.
Nothing here imports torch: the exporters only build strings.
"""

from __future__ import annotations

import textwrap
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode

from dltl_core.query import encode_query
from dltl_core.settings import settings_of

IMPORTS = """
    import copy
    import math

    import numpy as np
    import torch
    import torch.nn.functional as F
    from torch import nn
"""

# The digits as the core loads them (scikit-learn's 1,797 8x8 images, 17 grey levels -> [0, 1]),
# and the core's seeded split (a permutation of 0..n-1; its first round(n * share) are validation).
DIGITS = '''
    from sklearn.datasets import load_digits


    def digits():
        """The 1,797 digits: x (N, 1, 8, 8) float32 in [0, 1], y (N,) labels 0..9."""
        bunch = load_digits()
        x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
        return x, torch.from_numpy(bunch.target.astype(np.int64))
'''

SPLIT = '''
    def split(n, val_share, seed):
        """Indices (train, validation) of a seeded random split of n samples."""
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        n_val = int(round(n * val_share))
        return perm[n_val:], perm[:n_val]
'''

EVALUATE = '''
    @torch.inference_mode()
    def evaluate(model, x, y, batch_size=256):
        """Mean cross-entropy and accuracy of the model on (x, y): eval mode, no gradients."""
        model.eval()  # dropout off, batch norm uses its running statistics
        loss_sum = torch.zeros((), device=x.device)
        correct = torch.zeros((), dtype=torch.long, device=x.device)
        for start in range(0, len(y), batch_size):
            logits = model(x[start:start + batch_size])
            loss_sum += F.cross_entropy(logits, y[start:start + batch_size], reduction="sum")
            correct += (logits.argmax(1) == y[start:start + batch_size]).sum()
        return loss_sum.item() / len(y), correct.item() / len(y)
'''

# The training loop of dltl_core.train.fit on the CPU, step by step in the same order.
FIT = '''
    def fit(model, optimizer, train, val, epochs, batch_size, seed, scheduler=None, patience=None, verbose=True):
        """Train with mini-batch gradient descent on the cross-entropy; validate after every epoch.

        Returns the history (one dict per epoch), the best epoch and why the run diverged ("" if not).
        """
        x, y = train
        n = len(y)
        torch.manual_seed(seed)  # dropout's random masks
        order = torch.Generator().manual_seed(seed)  # the order of the samples in each epoch
        # A last batch of a single sample would break batch norm: it is left out.
        n_used = n - 1 if (n % batch_size == 1 and n > 1) else n
        history, best_loss, best_epoch, bad_epochs, best_state = [], math.inf, 0, 0, None
        first_loss, reason = None, ""
        for epoch in range(1, epochs + 1):
            model.train()
            perm = torch.randperm(n, generator=order)  # shuffle: a new order every epoch
            losses, preds, sizes = [], [], []
            for start in range(0, n_used, batch_size):
                idx = perm[start:start + batch_size]
                logits = model(x[idx])                 # forward pass: the scores f(x, W)
                loss = F.cross_entropy(logits, y[idx])  # the mini-batch's mean loss L
                optimizer.zero_grad(set_to_none=True)
                loss.backward()                        # backpropagation: the gradient dL/dW
                optimizer.step()                       # the update W <- W - lr * (step of the optimizer)
                if scheduler is not None:
                    scheduler.step()                   # the learning rate of the next step
                if first_loss is None:
                    first_loss = loss.item()
                losses.append(loss.detach())
                preds.append(logits.detach().argmax(1))
                sizes.append(len(idx))
            seen = sum(sizes)
            # The epoch's training loss: the mini-batch losses, weighted by their sizes, while W changed.
            train_loss = (torch.stack(losses) @ torch.tensor(sizes, dtype=torch.float32, device=y.device)).item() / seen
            train_acc = (torch.cat(preds) == y[perm[:seen]]).sum().item() / seen
            val_loss, val_acc = evaluate(model, *val, batch_size=max(2 * batch_size, 256))
            history.append({"epoch": epoch, "train_loss": train_loss, "val_loss": val_loss,
                            "train_acc": train_acc, "val_acc": val_acc})
            if verbose:
                print(f"epoch {epoch:4d}  train loss {train_loss:.8g}  val loss {val_loss:.8g}  "
                      f"train acc {train_acc:.8g}  val acc {val_acc:.8g}")
            # A diverged run stops here: inf/NaN, a loss 10x the first one, or a network stuck at chance.
            classes = logits.shape[-1]
            if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
                reason = "the loss became inf/NaN"
            elif train_loss > 10.0 * max(first_loss, 0.1):
                reason = f"the training loss exploded to {train_loss:.3g} (from {first_loss:.3g})"
            elif (epoch >= 3 and classes >= 3 and train_loss >= 0.99 * math.log(classes)
                  and train_acc <= 1.3 / classes):
                reason = f"the network collapsed to chance: training loss {train_loss:.3f} = ln {classes}"
            if reason:
                break
            if val_loss < best_loss:  # the best epoch so far: the one early stopping rolls back to
                best_loss, best_epoch, bad_epochs = val_loss, epoch, 0
                if patience is not None:
                    best_state = copy.deepcopy(model.state_dict())
            else:
                bad_epochs += 1
            if patience is not None and bad_epochs >= patience:  # early stopping
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        model.eval()
        return history, best_epoch, reason
'''


def header_lines(cls: type, values: Mapping[str, Any], fields: Iterable[str] | None = None) -> str:
    """``NAME = value  # label`` for each declared field: the script's settings, from the declarations.

    Every URL setting of the page becomes one upper-case variable of the script, so a new
    declaration reaches the code (the tests check each one changes it).
    """
    declared = settings_of(cls)
    lines = []
    for name in fields or declared:
        s = declared[name]
        if not s.url_state:
            continue
        lines.append(f"{name.upper()} = {values[name]!r}  # {s.label}")
    return "\n".join(lines)


def query_of(cls: type, values: Mapping[str, Any], fields: Iterable[str] | None = None) -> str:
    """The canonical query string of ``values`` (defaults left out), as the page's link has it."""
    keep = {k: v for k, v in values.items() if fields is None or k in set(fields)}
    return urlencode(encode_query(cls, keep, omit_default=True))


def join(*snippets: str) -> str:
    """Snippets (each indented as written here) as one block of code, a blank line apart."""
    return "\n\n\n".join(textwrap.dedent(t).strip("\n") for t in snippets if t.strip())


def indent(text: str, prefix: str = "    ") -> str:
    """Indent every non-empty line (to nest a snippet)."""
    return "\n".join(prefix + line if line.strip() else line for line in text.splitlines())


__all__ = ["DIGITS", "EVALUATE", "FIT", "IMPORTS", "SPLIT", "header_lines", "indent", "join", "query_of"]
