"""``python -m dltl_core train``: train an MLP or a small CNN and print the learning curves."""

from __future__ import annotations

import argparse
import math
from typing import Any

from dltl_core.checkpoint import make_checkpoint, save
from dltl_core.commands._common import PER_CLASS, add_bounded, add_config, bounded_list, declared, \
    make_config, range_text, writable_dir, writable_file
from dltl_core.data import DATASETS, load_dataset, split_tensors
from dltl_core.data.sources import LABEL_NOISE
from dltl_core.data.split import VAL_FRACTION
from dltl_core.data.synthetic import NOISE, POINTS
from dltl_core.device import get_policy
from dltl_core.models import count_parameters, create_model
from dltl_core.models.budget import check_fits, free_bytes_on, meta_activations, training_bytes
from dltl_core.models.cnn import BLOCKS, CHANNELS
from dltl_core.models.mlp import DEPTH, DROPOUT, WIDTH
from dltl_core.progress import Progress
from dltl_core.settings import Setting
from dltl_core.train import TrainConfig, evaluate, fit
from dltl_core.train.tensorboard import TensorBoardLogger, tensorboard_available

NAME = "train"
HELP = "train a model on a data set (digits, 2-D toys, MNIST/CIFAR-10, an image folder)"

# Sizes of a folder data set, declared once (their --help and checks read them): 1,024-pixel
# images are 3 MB each decoded.
IMAGE_SIZE = Setting("pixels", lo=4, hi=1024)
SAMPLES = Setting("training samples", lo=1, hi=POINTS.hi)
EPOCHS, BATCH_SIZE = declared(TrainConfig, "epochs"), declared(TrainConfig, "batch_size")
PATIENCE = declared(TrainConfig, "patience")
# The TrainConfig fields this command sets: their options, defaults and bounds are the declarations'.
TRAINING = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "schedule", "patience")

HISTORY_KEYS = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc", "lr", "seconds")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The train command's options."""
    d = p.add_argument_group("data")
    d.add_argument("--data", default="digits", choices=list(DATASETS), help="data set (default: digits)")
    d.add_argument("--folder", help="image folder in ImageFolder layout (with --data folder)")
    add_bounded(d, "--image-size", IMAGE_SIZE, help="resize folder images to this many pixels")
    add_bounded(d, "--max-per-class", PER_CLASS, help="at most this many folder images per class")
    add_bounded(d, "--n", POINTS, default=400, help="points of a 2-D set")
    add_bounded(d, "--noise", NOISE, kind=float, default=0.2, help="jitter of a 2-D set")
    add_bounded(d, "--label-noise", LABEL_NOISE, kind=float, default=0.0, help="share of flipped labels")
    add_bounded(d, "--val-fraction", VAL_FRACTION, kind=float, default=0.2, help="validation share")
    add_bounded(d, "--train-size", SAMPLES, help="use only this many training samples")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="mlp", choices=["mlp", "cnn"], help="model (default: mlp)")
    add_bounded(m, "--depth", DEPTH, default=2, help="MLP hidden layers")
    add_bounded(m, "--width", WIDTH, default=128, help="MLP units per hidden layer")
    m.add_argument("--channels", default="16,32", type=bounded_list(CHANNELS, BLOCKS),
                   help=f"CNN channels per block, comma-separated ({range_text(BLOCKS)} blocks of "
                        f"{range_text(CHANNELS)} channels; default 16,32)")
    m.add_argument("--activation", default="relu", help="MLP activation (relu, tanh, sigmoid, gelu, linear)")
    add_bounded(m, "--dropout", DROPOUT, kind=float, default=0.0, help="dropout probability")
    m.add_argument("--batchnorm", action="store_true", help="batch normalisation")
    t = p.add_argument_group("training")
    add_config(t, TrainConfig, TRAINING + ("seed",))
    o = p.add_argument_group("output")
    o.add_argument("--val-folder", help="with --data folder: validate on this folder (same class "
                                        "sub-folders) instead of a random share of --folder")
    o.add_argument("--save", metavar="PATH", help="write the trained model to PATH (torch.load(PATH, "
                                                  "weights_only=True); python -m dltl_core predict --load PATH)")
    o.add_argument("--tensorboard", metavar="DIR", help="write per-epoch scalars and hyperparameters to DIR "
                                                        "(tensorboard --logdir DIR)")


def check_args(args: argparse.Namespace) -> None:
    """Refuse out-of-range values and unwritable outputs before any data is loaded.

    (The size-like options were checked against their declared bounds while parsing.)
    """
    if args.val_folder and args.data != "folder":
        raise ValueError("--val-folder goes with --data folder")
    writable_file("--save", args.save)
    writable_dir("--tensorboard", args.tensorboard)
    if args.tensorboard and not tensorboard_available():
        raise ValueError("--tensorboard needs the tensorboard package: pip install tensorboard")


def _predecode(progress: Progress, args: argparse.Namespace) -> None:
    """Decode the folder once with a bar; load_dataset then reads the decoded cache.

    (load_dataset has no progress hook; the first decode of a big folder takes minutes.)
    """
    from dltl_core.data.folder import load_image_folder

    bar = progress.count_fn("decoding images", unit="img")
    try:
        del_me = load_image_folder(args.folder, size=args.image_size, max_per_class=args.max_per_class,
                                   progress=bar)
        del del_me  # only the disk cache is wanted here
    except (OSError, ValueError):
        pass  # load_dataset below reports the same problem with its own message
    finally:
        bar.close()


def _check_memory(args: argparse.Namespace, kwargs: dict[str, Any], input_shape: Any, n_train: int) -> None:
    """Refuse a model whose training (weights, gradients, Adam's state, one batch's
    activations) would not fit in the free memory: in-bound --depth and --width together
    can ask for tens of GB. Counted on the meta device: nothing is allocated."""
    params, acts = meta_activations(lambda: create_model(args.model, **kwargs), tuple(input_shape))
    advice = "use a smaller --depth or --width" if args.model == "mlp" else "use fewer --channels"
    check_fits(training_bytes(params, acts, min(args.batch_size, max(1, n_train))),
               f"training this {args.model.upper()} ({params:,} parameters, batch {args.batch_size})",
               advice + " or --batch-size", available=free_bytes_on(get_policy().device))


def _model(args: argparse.Namespace, data: Any, n_train: int) -> tuple[Any, dict[str, Any]]:
    """The model and the (name, kwargs) that rebuild it from a checkpoint."""
    if args.model == "mlp":
        kwargs = dict(in_features=data.in_features, num_classes=len(data.classes), depth=args.depth,
                      width=args.width, activation=args.activation, dropout=args.dropout,
                      batchnorm=args.batchnorm)
    else:
        if len(data.input_shape) != 3:
            raise ValueError(f"the CNN needs images; {args.data} has inputs of shape {data.input_shape}")
        kwargs = dict(in_channels=data.input_shape[0], num_classes=len(data.classes),
                      channels=tuple(args.channels), dropout=args.dropout, batchnorm=args.batchnorm)
    _check_memory(args, kwargs, data.input_shape, n_train)
    return create_model(args.model, seed=args.seed, **kwargs), {"name": args.model, "kwargs": kwargs}


def _val_folder(args: argparse.Namespace, data: Any) -> tuple[Any, Any]:
    from dltl_core.data.folder import load_image_folder

    h, w = data.input_shape[1:]
    size = args.image_size or (w, h)  # PIL's (W, H): every image resized to the training images' size
    val = load_image_folder(args.val_folder, size=size, classes=data.classes)
    return val.x, val.y


def _inputs(args: argparse.Namespace, data: Any) -> dict[str, Any]:
    if args.data == "folder":
        h, w = data.input_shape[1:]
        return {"kind": "image", "size": [h, w], "crop": args.image_size is not None,
                "image_size": args.image_size, "scale": "div255"}
    return {"kind": args.data, "shape": list(data.input_shape)}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train and return the history, best epoch and its validation accuracy."""
    check_args(args)
    progress = Progress.from_args(args)
    if args.data == "folder" and args.folder:
        _predecode(progress, args)
    data = load_dataset(args.data, n=args.n, noise=args.noise, label_noise=args.label_noise, seed=args.seed,
                        folder=args.folder, image_size=args.image_size, max_per_class=args.max_per_class)
    if args.val_folder:
        train, val = (data.x, data.y), _val_folder(args, data)
    else:
        train, val = split_tensors(data.x, data.y, args.val_fraction, seed=args.seed)
    if args.train_size is not None:
        train = (train[0][: args.train_size], train[1][: args.train_size])
    model, architecture = _model(args, data, len(train[1]))
    config = make_config(TrainConfig, **{k: getattr(args, k) for k in TRAINING + ("seed",)})
    callbacks: list[Any] = [progress.fit_callback("train")]
    if args.tensorboard:
        hparams = {**config.as_dict(), "data": args.data, "model": args.model, **architecture["kwargs"]}
        callbacks.append(TensorBoardLogger(args.tensorboard, hparams))
    policy = get_policy()
    result = fit(model, train, val, config, policy=policy, callbacks=callbacks)
    history = [{k: getattr(r, k) for k in HISTORY_KEYS} for r in result.history]
    out = {
        "history": history,
        "best_epoch": result.best_epoch,
        "val_acc": result.best_val_acc,
        "diverged_at": result.diverged_at,
        "stopped_early": result.stopped_early,
        "parameters": count_parameters(model),
        "train_samples": len(train[1]),
        "val_samples": len(val[1]),
        "device": policy.name,
        "seconds": result.seconds,
    }
    if args.save:
        out["saved"] = _save(args, model, architecture, data, config, val, out)
    return out


def _save(args: argparse.Namespace, model: Any, architecture: dict[str, Any], data: Any, config: TrainConfig,
          val: Any, out: dict[str, Any]) -> str:
    """Write the checkpoint; its val_acc is measured on the kept (best) weights."""
    metrics = {k: out[k] for k in ("best_epoch", "val_acc", "diverged_at", "stopped_early", "parameters",
                                   "train_samples", "val_samples", "device", "seconds")}
    if len(val[1]):
        metrics["val_loss"], metrics["val_acc"] = evaluate(model, val)
    settings = {**config.as_dict(), "data": args.data, "folder": args.folder, "val_folder": args.val_folder,
                "val_fraction": args.val_fraction, "max_per_class": args.max_per_class}
    ck = make_checkpoint(model, architecture=architecture, classes=data.classes, inputs=_inputs(args, data),
                         config=settings, metrics=metrics, task="train")
    return str(save(ck, args.save))


def format_text(result: dict[str, Any]) -> str:
    """A small table of the learning curves."""
    fmt = lambda v: "   -   " if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:7.4f}"  # noqa: E731
    lines = [f"{result['parameters']:,} parameters, {result['train_samples']} train / "
             f"{result['val_samples']} validation samples, on {result['device']}",
             "epoch  train_loss  val_loss  train_acc  val_acc        lr   seconds"]
    for h in result["history"]:
        lines.append(f"{h['epoch']:5d}  {fmt(h['train_loss'])}    {fmt(h['val_loss'])}  {fmt(h['train_acc'])}"
                     f"    {fmt(h['val_acc'])}  {h['lr']:8.2g}  {h['seconds']:7.2f}")
    lines.append(f"best epoch {result['best_epoch']}: validation accuracy {fmt(result['val_acc']).strip()}")
    if result["diverged_at"]:
        lines.append(f"diverged at epoch {result['diverged_at']}")
    if result["stopped_early"]:
        lines.append("stopped early")
    if result.get("saved"):
        lines.append(f"model saved to {result['saved']}")
    return "\n".join(lines)
