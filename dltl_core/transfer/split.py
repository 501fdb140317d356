"""The photos of a transfer run and their seeded train/validation split (and the test folder),
so every mode trains and validates on the same photos.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from dltl_core.birds import BirdSet, load_birds, split_indices
from dltl_core.transfer.config import TransferConfig


def load_split(config: TransferConfig) -> tuple[BirdSet, list[int], list[int]]:
    """The chosen photos and the seeded, stratified (train positions, val positions)."""
    birds = load_birds(config.data, config.species, config.max_per_species)
    tr, va = split_indices(birds.labels, config.val_fraction, config.seed)
    return birds, tr, va


def _rows(birds: BirdSet, files: Sequence[str], config: TransferConfig) -> tuple[list[int], list[int]]:
    tr_pos, va_pos = split_indices(birds.labels, config.val_fraction, config.seed)
    row_of = {f: i for i, f in enumerate(files)}  # files that decoded
    tr = [row_of[birds.files[p]] for p in tr_pos if birds.files[p] in row_of]
    va = [row_of[birds.files[p]] for p in va_pos if birds.files[p] in row_of]
    if not tr:
        raise ValueError("no photo could be decoded for training")
    return tr, va


def _test_set(config: TransferConfig, species: Sequence[str], test_data: str | Path) -> BirdSet:
    """The same species from another folder (photos the training never saw)."""
    test = load_birds(test_data, list(species))
    if list(test.species) != list(species):
        raise ValueError("the test folder must hold the same species folders")
    return test
