"""Bird photos for transfer learning: species folders, the CUB-200-2011 download, zip uploads."""

from dltl_core.birds.cub import CUB_MD5, CUB_SIZE, CUB_URL, download_cub, is_downloaded
from dltl_core.birds.folder import (DEFAULT_SPECIES, BirdSet, default_birds_dir, list_species,
                                    load_birds, pick_species, pretty_name, species_with_photos,
                                    split_indices)
from dltl_core.birds.upload import (UnpackedZip, session_area, session_quota, sweep_uploads,
                                    unpack_species_zip)

__all__ = [
    "CUB_MD5", "CUB_SIZE", "CUB_URL", "DEFAULT_SPECIES", "BirdSet", "UnpackedZip",
    "default_birds_dir", "download_cub", "is_downloaded", "list_species", "load_birds",
    "pick_species", "pretty_name", "session_area", "session_quota", "species_with_photos",
    "split_indices", "sweep_uploads", "unpack_species_zip",
]
